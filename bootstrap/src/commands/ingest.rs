//! `pluto-duck ingest`: one ingest from flags, or every entry of a YAML recipe, each followed on its SSE stream
//! with a progress bar.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::api_client::ApiClient;
use super::source::read_password;
use crate::cli::IngestArgs;
use crate::config::Config;
use crate::error::{CliError, CliResult};
use crate::secrets;

/// A recipe: several ingests run in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recipe {
    project: Option<String>,
    ingest: Vec<RecipeEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeEntry {
    /// A stored source's name, or an inline source (the attach body's fields; secrets as env:/secret: references).
    source: Value,
    table: Option<String>,
    query: Option<String>,
    target: Option<String>,
    schema: Option<String>,
    mode: Option<String>,
    #[serde(default)]
    keys: Vec<String>,
}

struct Job {
    label: String,
    body: Value,
}

fn absolute(path: &str, base: &Path) -> String {
    let p = Path::new(path);
    if p.is_absolute() {
        path.to_owned()
    } else {
        base.join(p).display().to_string()
    }
}

/// `env:VAR` / `secret:NAME` resolved; anything else as given.
async fn maybe_reference(config: &Config, key: &str, value: &str) -> CliResult<String> {
    if value.starts_with("env:") || value.starts_with("secret:") {
        let store = secrets::secret_store(config);
        let v = secrets::resolve(store.as_ref(), key, value).await?;
        Ok(v.expose_secret().to_owned())
    } else {
        Ok(value.to_owned())
    }
}

/// A DSN with a password in it must not sit in a recipe file or a shell history.
fn has_password(dsn: &str) -> bool {
    dsn.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .is_some_and(|(creds, _)| creds.contains(':'))
}

async fn inline_source(config: &Config, source: &Map<String, Value>, base: &Path) -> CliResult<Value> {
    let mut out = source.clone();
    for key in ["password", "secret_access_key"] {
        if let Some(v) = source.get(key) {
            let r = v.as_str().unwrap_or_default();
            if !(r.starts_with("env:") || r.starts_with("secret:")) {
                return Err(CliError::invalid(format!(
                    "{key} in a recipe must be a reference like env:VARIABLE or secret:NAME, not a literal value"
                )));
            }
            out.insert(key.into(), Value::from(maybe_reference(config, key, r).await?));
        }
    }
    if let Some(dsn) = source.get("dsn").and_then(Value::as_str) {
        if has_password(dsn) {
            return Err(CliError::invalid(
                "a dsn with a password must not be written in a recipe: use dsn: env:VARIABLE",
            ));
        }
        out.insert("dsn".into(), Value::from(maybe_reference(config, "dsn", dsn).await?));
    }
    let kind = source.get("kind").and_then(Value::as_str).unwrap_or_default();
    for key in ["location", "path"] {
        if let Some(p) = source.get(key).and_then(Value::as_str) {
            if matches!(kind, "file" | "sqlite" | "duckdb") {
                out.insert(key.into(), Value::from(absolute(p, base)));
            }
        }
    }
    Ok(Value::Object(out))
}

async fn recipe_jobs(config: &Config, path: &Path) -> CliResult<(Option<String>, Vec<Job>)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::invalid(format!("cannot read recipe {}: {e}", path.display())))?;
    let recipe: Recipe =
        serde_yaml::from_str(&text).map_err(|e| CliError::invalid(format!("recipe {}: {e}", path.display())))?;
    if recipe.ingest.is_empty() {
        return Err(CliError::invalid(format!("recipe {} lists no ingest", path.display())));
    }
    let base = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut jobs = Vec::new();
    for (i, e) in recipe.ingest.into_iter().enumerate() {
        let source = match &e.source {
            Value::String(name) => Value::from(name.clone()),
            Value::Object(map) => inline_source(config, map, &base).await?,
            _ => {
                return Err(CliError::invalid(format!(
                    "recipe entry {}: source must be a source name or a mapping",
                    i + 1
                )))
            }
        };
        let label = e
            .target
            .clone()
            .or_else(|| e.table.clone())
            .unwrap_or_else(|| format!("entry {}", i + 1));
        let mut body = json!({ "source": source, "mode": e.mode.unwrap_or_else(|| "replace".into()), "keys": e.keys });
        for (k, v) in [
            ("table", e.table),
            ("query", e.query),
            ("target", e.target),
            ("schema", e.schema),
        ] {
            if let Some(v) = v {
                body[k] = Value::from(v);
            }
        }
        jobs.push(Job { label, body });
    }
    Ok((recipe.project, jobs))
}

async fn flag_job(config: &Config, a: &IngestArgs) -> CliResult<Job> {
    let cwd = std::env::current_dir()?;
    let (label, mut source) = if let Some(f) = &a.file {
        (f.clone(), json!({ "kind": "file", "location": absolute(f, &cwd) }))
    } else if let Some(u) = &a.url {
        (u.clone(), json!({ "dsn": u }))
    } else if let Some(uri) = a.from_postgres.as_ref().or(a.from_mysql.as_ref()) {
        let dsn = maybe_reference(config, "dsn", uri).await?;
        let scheme_ok = if a.from_postgres.is_some() {
            dsn.starts_with("postgres://") || dsn.starts_with("postgresql://")
        } else {
            dsn.starts_with("mysql://") || dsn.starts_with("mariadb://")
        };
        if !scheme_ok {
            return Err(CliError::invalid(
                "expected a URI like postgres://user@host:5432/database (or mysql://...), or env:VARIABLE holding one",
            ));
        }
        ("database".to_owned(), json!({ "dsn": dsn }))
    } else if let Some(p) = &a.from_sqlite {
        (
            p.display().to_string(),
            json!({ "kind": "sqlite", "path": absolute(&p.display().to_string(), &cwd) }),
        )
    } else if let Some(p) = &a.from_duckdb {
        (
            p.display().to_string(),
            json!({ "kind": "duckdb", "path": absolute(&p.display().to_string(), &cwd) }),
        )
    } else if let Some(name) = &a.source {
        (name.clone(), Value::from(name.clone()))
    } else {
        return Err(CliError::invalid("give a recipe file or one of --file, --url, --from-postgres, --from-mysql, --from-sqlite, --from-duckdb, --source"));
    };
    if let Some(obj) = source.as_object_mut() {
        if let Some(f) = &a.format {
            obj.insert("format".into(), Value::from(f.clone()));
        }
        if a.password_stdin {
            obj.insert("password".into(), Value::from(read_password()?));
        }
    }
    let mut body = json!({ "source": source, "mode": a.mode.as_str(), "keys": a.keys });
    for (k, v) in [
        ("table", &a.table),
        ("query", &a.query),
        ("target", &a.target),
        ("schema", &a.schema),
    ] {
        if let Some(v) = v {
            body[k] = Value::from(v.clone());
        }
    }
    let label = a.target.clone().or_else(|| a.table.clone()).unwrap_or(label);
    Ok(Job { label, body })
}

fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// Submits one ingest and follows it to the end; returns the final run.
async fn run_job(api: &ApiClient, project: Option<&str>, job: &Job, bar: &ProgressBar) -> CliResult<Value> {
    bar.set_message(format!("{}: opening the source", job.label));
    let run = api
        .call("POST", "/api/v1/ingest", project, Some(job.body.clone()))
        .await?;
    let id = run["id"].as_str().unwrap_or_default().to_owned();
    bar.set_message(format!("{}: loading", job.label));
    let label = job.label.clone();
    api.follow_events(&format!("/api/v1/ingest/runs/{id}/events"), project, |name, data| {
        if name == "progress" {
            let (part, parts) = (data["part"].as_u64().unwrap_or(0), data["parts"].as_u64().unwrap_or(0));
            if parts > 0 {
                if bar.length() != Some(parts) {
                    bar.set_length(parts);
                    bar.set_style(bar_style());
                }
                bar.set_position(part);
            }
            let rows = data["rows"].as_u64().unwrap_or(0);
            let bytes = data["bytes"].as_u64().unwrap_or(0);
            bar.set_message(format!("{label}: {rows} rows, {}", human_bytes(bytes)));
        }
    })
    .await?;
    api.call("GET", &format!("/api/v1/ingest/runs/{id}"), project, None)
        .await
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} files  {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

pub async fn ingest(config: &Config, args: IngestArgs) -> CliResult<ExitCode> {
    let (recipe_project, jobs) = match &args.recipe {
        Some(path) => recipe_jobs(config, path).await?,
        None => (None, vec![flag_job(config, &args).await?]),
    };
    let project = args.project.clone().or(recipe_project);
    let api = ApiClient::connect(config).await?;
    let multi = MultiProgress::new();
    if args.quiet || !std::io::stderr().is_terminal() {
        multi.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut first_error = None;
    for job in &jobs {
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(spinner_style());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let started = Instant::now();
        let outcome = run_job(&api, project.as_deref(), job, &bar).await;
        bar.finish_and_clear();
        let error = match outcome {
            Ok(run) if run["status"] == "succeeded" => {
                println!(
                    "ingested {} rows into {} ({}, {:.1} s)",
                    run["rows"].as_u64().unwrap_or(0),
                    run["target"].as_str().unwrap_or_default(),
                    human_bytes(run["bytes"].as_u64().unwrap_or(0)),
                    started.elapsed().as_secs_f64()
                );
                continue;
            }
            Ok(run) => CliError::invalid(format!(
                "{}: ingest {}: {}",
                job.label,
                run["status"].as_str().unwrap_or("failed"),
                run["error"].as_str().unwrap_or_default()
            )),
            Err(e) if jobs.len() > 1 => CliError::new(e.kind, format!("{}: {}", job.label, e.message)),
            Err(e) => e,
        };
        if jobs.len() == 1 {
            return Err(error);
        }
        // A recipe goes on with the other entries and fails at the end.
        eprintln!("error: {}", error.message);
        first_error.get_or_insert(error);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}
