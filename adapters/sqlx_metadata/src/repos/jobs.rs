//! Jobs: one JSON document per job (what runs, its schedule, when the scheduler last considered it due).

use pluto_duck_application::ports::RepoError;
use pluto_duck_domain::{Identifier, IngestMode, JobDefinition, JobIngest, JobSchedule, JobTask, ProjectId};
use serde_json::{json, Value};

use super::{bad, time_of};
use crate::dialect::{conflict_or_err, execute, fetch_all, fetch_optional, map_err, Db};

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn task_doc(task: &JobTask) -> Value {
    match task {
        JobTask::Sql { sql } => json!({ "kind": "sql", "sql": sql }),
        JobTask::Analysis {
            analysis,
            params,
            force,
        } => {
            json!({ "kind": "analysis", "analysis": analysis.as_str(), "params": params, "force": force })
        }
        JobTask::Ingest(i) => json!({
            "kind": "ingest", "source": i.source.as_str(), "table": i.table, "query": i.query, "target": i.target,
            "schema": i.schema, "mode": i.mode.as_str(), "keys": i.keys, "lenient_csv": i.lenient_csv,
        }),
        JobTask::Dbt {
            command,
            select,
            exclude,
            vars,
        } => {
            json!({ "kind": "dbt", "command": command, "select": select, "exclude": exclude, "vars": vars })
        }
    }
}

fn task_of(v: &Value) -> Result<JobTask, RepoError> {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok(match v["kind"].as_str().unwrap_or_default() {
        "sql" => JobTask::Sql { sql: s("sql") },
        "analysis" => JobTask::Analysis {
            analysis: Identifier::parse(s("analysis")).map_err(bad)?,
            params: v["params"].as_str().unwrap_or("{}").to_owned(),
            force: v["force"].as_bool().unwrap_or(false),
        },
        "ingest" => JobTask::Ingest(JobIngest {
            source: Identifier::parse(s("source")).map_err(bad)?,
            table: text(&v["table"]),
            query: text(&v["query"]),
            target: text(&v["target"]),
            schema: text(&v["schema"]),
            mode: IngestMode::parse(&s("mode")).map_err(bad)?,
            keys: strings(&v["keys"]),
            lenient_csv: v["lenient_csv"].as_bool().unwrap_or(false),
        }),
        "dbt" => JobTask::Dbt {
            command: s("command"),
            select: strings(&v["select"]),
            exclude: strings(&v["exclude"]),
            vars: v["vars"].as_str().unwrap_or("{}").to_owned(),
        },
        other => return Err(bad(format!("unknown job task {other:?}"))),
    })
}

fn doc(job: &JobDefinition) -> String {
    json!({
        "description": job.description,
        "task": task_doc(&job.task),
        "schedule": job.schedule.as_ref().map(|s| json!({ "cron": s.cron, "timezone": s.timezone })),
        "paused": job.paused,
        "created_at": job.created_at.to_rfc3339(),
        "updated_at": job.updated_at.to_rfc3339(),
        "last_scheduled_at": job.last_scheduled_at.map(|t| t.to_rfc3339()),
    })
    .to_string()
}

fn from_doc(project: &str, name: &str, doc: &str) -> Result<JobDefinition, RepoError> {
    let v: Value = serde_json::from_str(doc).map_err(bad)?;
    let schedule = match &v["schedule"] {
        Value::Null => None,
        s => Some(JobSchedule {
            cron: s["cron"].as_str().unwrap_or_default().to_owned(),
            timezone: s["timezone"].as_str().unwrap_or("UTC").to_owned(),
        }),
    };
    Ok(JobDefinition {
        project: ProjectId::parse(project).map_err(bad)?,
        name: Identifier::parse(name).map_err(bad)?,
        description: v["description"].as_str().unwrap_or_default().to_owned(),
        task: task_of(&v["task"])?,
        schedule,
        paused: v["paused"].as_bool().unwrap_or(false),
        created_at: time_of(&v["created_at"])?,
        updated_at: time_of(&v["updated_at"])?,
        last_scheduled_at: match &v["last_scheduled_at"] {
            Value::Null => None,
            t => Some(time_of(t)?),
        },
    })
}

/// Conflict when the project has a job of that name.
pub(crate) async fn insert(db: &Db, job: &JobDefinition) -> Result<(), RepoError> {
    execute!(
        db,
        sqlx::query("INSERT INTO jobs (project_id, name, doc) VALUES ($1, $2, $3)")
            .bind(job.project.as_str())
            .bind(job.name.as_str())
            .bind(doc(job))
    )
    .map_err(conflict_or_err("job", job.name.as_str()))?;
    Ok(())
}

/// Replaces the stored job; false when there is none.
pub(crate) async fn update(db: &Db, job: &JobDefinition) -> Result<bool, RepoError> {
    let done = execute!(
        db,
        sqlx::query("UPDATE jobs SET doc = $3 WHERE project_id = $1 AND name = $2")
            .bind(job.project.as_str())
            .bind(job.name.as_str())
            .bind(doc(job))
    )
    .map_err(map_err)?;
    Ok(done > 0)
}

pub(crate) async fn get(db: &Db, project: &ProjectId, name: &Identifier) -> Result<Option<JobDefinition>, RepoError> {
    let doc: Option<String> = fetch_optional!(
        db,
        sqlx::query_scalar("SELECT doc FROM jobs WHERE project_id = $1 AND name = $2")
            .bind(project.as_str())
            .bind(name.as_str())
    )
    .map_err(map_err)?;
    doc.map(|d| from_doc(project.as_str(), name.as_str(), &d)).transpose()
}

/// Ordered by project, then name; every project's when `project` is `None` (the scheduler).
pub(crate) async fn list(db: &Db, project: Option<ProjectId>) -> Result<Vec<JobDefinition>, RepoError> {
    let project = project.map(|p| p.as_str().to_owned());
    let rows: Vec<(String, String, String)> = fetch_all!(
        db,
        sqlx::query_as(
            "SELECT project_id, name, doc FROM jobs WHERE CAST($1 AS TEXT) IS NULL OR project_id = $1 \
             ORDER BY project_id, name"
        )
        .bind(&project)
    )
    .map_err(map_err)?;
    rows.iter().map(|(p, n, d)| from_doc(p, n, d)).collect()
}

pub(crate) async fn delete(db: &Db, project: &ProjectId, name: &Identifier) -> Result<bool, RepoError> {
    let done = execute!(
        db,
        sqlx::query("DELETE FROM jobs WHERE project_id = $1 AND name = $2")
            .bind(project.as_str())
            .bind(name.as_str())
    )
    .map_err(map_err)?;
    Ok(done > 0)
}
