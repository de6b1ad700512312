//! Jobs: named units of work of a project (`/jobs`). A job says what runs (SQL, an analysis with parameters, an
//! ingest from a stored source, a dbt selection) and optionally when (a cron schedule); each execution is a
//! `Run` of kind `job` whose input is the job's name.

use chrono::{DateTime, Utc};

use crate::{DomainError, Identifier, IngestMode, ProjectId};

/// The longest SQL a job holds.
pub const MAX_JOB_SQL_BYTES: usize = 1024 * 1024;

/// An ingest recipe: the ingest request of `/ingest`, limited to stored sources (an inline configuration carries
/// a password, which a stored job must not keep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIngest {
    pub source: Identifier,
    pub table: Option<String>,
    pub query: Option<String>,
    pub target: Option<String>,
    pub schema: Option<String>,
    pub mode: IngestMode,
    pub keys: Vec<String>,
    /// CSV files: skip malformed rows instead of failing.
    pub lenient_csv: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobTask {
    Sql {
        sql: String,
    },
    /// Runs the analysis and whatever it depends on; `params` is a JSON object as text.
    Analysis {
        analysis: Identifier,
        params: String,
        force: bool,
    },
    Ingest(JobIngest),
    /// `command` is a dbt command (`run`, `build`, `test`, `seed`); `vars` a JSON object as text.
    Dbt {
        command: String,
        select: Vec<String>,
        exclude: Vec<String>,
        vars: String,
    },
}

impl JobTask {
    /// `sql`, `analysis`, `ingest` or `dbt`.
    pub fn kind(&self) -> &'static str {
        match self {
            JobTask::Sql { .. } => "sql",
            JobTask::Analysis { .. } => "analysis",
            JobTask::Ingest(_) => "ingest",
            JobTask::Dbt { .. } => "dbt",
        }
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |m: String| Err(DomainError::InvalidJob(m));
        match self {
            JobTask::Sql { sql } if sql.trim().is_empty() => bad("sql is empty".into()),
            JobTask::Sql { sql } if sql.len() > MAX_JOB_SQL_BYTES => {
                bad(format!("sql is longer than {MAX_JOB_SQL_BYTES} bytes"))
            }
            JobTask::Ingest(i) if i.table.is_none() == i.query.is_none() => {
                bad("an ingest names exactly one of table and query".into())
            }
            JobTask::Ingest(i) if i.query.is_some() && i.target.is_none() => {
                bad("an ingest of a query needs a target".into())
            }
            JobTask::Dbt { command, .. }
                if !["run", "build", "test", "seed", "compile"].contains(&command.as_str()) =>
            {
                bad(format!(
                    "dbt command must be run, build, test, seed or compile, not {command:?}"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// When a job runs by itself: a cron expression (5 fields, or 6 with seconds first) in a time zone (`UTC` or a
/// fixed offset like `+02:00`). The expression is checked by the application, which owns a cron parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSchedule {
    pub cron: String,
    pub timezone: String,
}

impl JobSchedule {
    /// The time zone's offset east of UTC in seconds: `UTC`/`Z` is 0, `+02:00` is 7200.
    pub fn offset_seconds(&self) -> Result<i32, DomainError> {
        let tz = self.timezone.trim();
        if tz.eq_ignore_ascii_case("utc") || tz == "Z" || tz.is_empty() {
            return Ok(0);
        }
        let bad = || {
            DomainError::InvalidJob(format!(
                "timezone {tz:?}: give UTC or a fixed offset such as +02:00 (named zones are not supported)"
            ))
        };
        let (sign, rest) = match tz.as_bytes().first() {
            Some(b'+') => (1, &tz[1..]),
            Some(b'-') => (-1, &tz[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if !(0..=14).contains(&h) || !(0..60).contains(&m) || h.to_string().len() > 2 {
            return Err(bad());
        }
        Ok(sign * (h * 3600 + m * 60))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefinition {
    pub project: ProjectId,
    pub name: Identifier,
    pub description: String,
    pub task: JobTask,
    pub schedule: Option<JobSchedule>,
    /// Turned off, a job keeps its schedule but the scheduler does not start it.
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The last time the scheduler considered the job due (a run started, or was skipped because one was still
    /// running). The next due time is the schedule's first slot after it; slots missed while the server was down
    /// collapse into one run.
    pub last_scheduled_at: Option<DateTime<Utc>>,
}

impl JobDefinition {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.description.len() > 4096 {
            return Err(DomainError::InvalidJob("description is longer than 4096 bytes".into()));
        }
        if let Some(s) = &self.schedule {
            s.offset_seconds()?;
            if s.cron.trim().is_empty() || s.cron.len() > 256 {
                return Err(DomainError::InvalidJob("cron must have 1 to 256 characters".into()));
            }
        }
        self.task.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(tz: &str) -> JobSchedule {
        JobSchedule {
            cron: "* * * * *".into(),
            timezone: tz.into(),
        }
    }

    #[test]
    fn timezones_are_utc_or_fixed_offsets() {
        assert_eq!(schedule("UTC").offset_seconds().unwrap(), 0);
        assert_eq!(schedule("+02:00").offset_seconds().unwrap(), 7200);
        assert_eq!(schedule("-05:30").offset_seconds().unwrap(), -19800);
        for bad in ["Europe/Paris", "+2", "+15:00", "+02:60", "02:00"] {
            assert!(schedule(bad).offset_seconds().is_err(), "{bad}");
        }
    }

    #[test]
    fn tasks_are_checked() {
        assert!(JobTask::Sql { sql: " ".into() }.validate().is_err());
        assert!(JobTask::Sql { sql: "select 1".into() }.validate().is_ok());
        let dbt = |c: &str| JobTask::Dbt {
            command: c.into(),
            select: vec![],
            exclude: vec![],
            vars: "{}".into(),
        };
        assert!(dbt("build").validate().is_ok());
        assert!(dbt("docs").validate().is_err());
        let ingest = JobIngest {
            source: Identifier::parse("files").unwrap(),
            table: None,
            query: None,
            target: None,
            schema: None,
            mode: IngestMode::Replace,
            keys: vec![],
            lenient_csv: false,
        };
        assert!(JobTask::Ingest(ingest.clone()).validate().is_err());
        let ok = JobIngest {
            table: Some("orders".into()),
            ..ingest
        };
        assert!(JobTask::Ingest(ok).validate().is_ok());
    }
}
