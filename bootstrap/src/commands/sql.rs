//! `pluto-duck sql`: through the running server's API when one owns the warehouse (DuckDB allows one writer
//! process per file), otherwise in-process on the warehouse itself. Same history, same result formats.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use pluto_duck_application::{ErrorKind, QuerySubmission};
use pluto_duck_domain::{ProjectId, RunStatus};
use pluto_duck_http::formats::{encode, Format, JsonEnvelope};
use secrecy::ExposeSecret;

use super::api_client::{problem_error, server_token};
use crate::cli::{SqlArgs, SqlFormat};
use crate::config::Config;
use crate::error::{CliError, CliResult};
use crate::wiring;

/// Rows a table prints before it says how many more there are.
const TABLE_ROWS: usize = 1000;

fn wire_format(f: SqlFormat) -> Format {
    match f {
        SqlFormat::Csv => Format::Csv,
        SqlFormat::Json => Format::Json,
        SqlFormat::Ndjson => Format::Ndjson,
        SqlFormat::Arrow | SqlFormat::Table => Format::Arrow,
        SqlFormat::Parquet => Format::Parquet,
    }
}

fn output(args: &SqlArgs) -> CliResult<Box<dyn Write + Send>> {
    Ok(match &args.output {
        Some(path) => {
            Box::new(std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| {
                CliError::unavailable(format!("cannot write {}: {e}", path.display()))
            })?))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

fn spinner() -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb.set_message("running");
    pb
}

pub async fn sql(config: &Config, args: SqlArgs) -> CliResult<ExitCode> {
    let project = ProjectId::parse(args.project.clone().unwrap_or_else(|| ProjectId::DEFAULT.into()))
        .map_err(|e| CliError::invalid(e.to_string()))?;
    match super::api_client::running_server(config).await {
        Some(url) => via_server(config, &url, &project, args).await,
        None => in_process(config, &project, args).await,
    }
}

fn print_table(batches: &[RecordBatch], total: u64, out: &mut dyn Write) -> CliResult<()> {
    let mut shown = Vec::new();
    let mut rows = 0usize;
    for b in batches {
        if rows >= TABLE_ROWS {
            break;
        }
        let take = (TABLE_ROWS - rows).min(b.num_rows());
        shown.push(b.slice(0, take));
        rows += take;
    }
    let table = arrow::util::pretty::pretty_format_batches(&shown).map_err(|e| CliError::internal(e.to_string()))?;
    writeln!(out, "{table}")?;
    if total as usize > rows {
        writeln!(
            out,
            "({total} rows, first {rows} shown; use --format csv or --output for all)"
        )?;
    } else {
        writeln!(out, "({total} row{})", if total == 1 { "" } else { "s" })?;
    }
    Ok(())
}

async fn in_process(config: &Config, project: &ProjectId, args: SqlArgs) -> CliResult<ExitCode> {
    let wired = wiring::wire(config).await?;
    let queries = wired.app.queries.clone();
    let run = queries
        .submit(
            project,
            QuerySubmission {
                sql: args.sql.clone(),
                timeout_ms: args.timeout_ms,
                max_rows: args.max_rows,
                read_only: args.read_only,
                params: Vec::new(),
                actor: Some("cli".into()),
            },
        )
        .await?;
    let pb = spinner();
    let run = loop {
        let r = queries
            .wait(project, run.id.as_str(), Duration::from_millis(200))
            .await?;
        if r.status.is_terminal() {
            break r;
        }
        pb.set_message(format!("running {}", r.id));
    };
    pb.finish_and_clear();
    if run.status != RunStatus::Succeeded {
        let msg = run.failure.map(|f| f.message).unwrap_or_default();
        let kind = if run.status == RunStatus::TimedOut {
            ErrorKind::Timeout
        } else {
            ErrorKind::Invalid
        };
        return Err(CliError::new(kind, format!("query {}: {msg}", run.status.as_str())));
    }
    let (run, page) = queries.result(project, run.id.as_str(), 0, None).await?;
    let mut out = output(&args)?;
    if args.format == SqlFormat::Table {
        let batches: Vec<RecordBatch> = page
            .batches
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::internal(e.to_string()))?;
        print_table(&batches, page.total_rows, &mut out)?;
    } else {
        let envelope = JsonEnvelope {
            run_id: run.id.to_string(),
            column_types: run.columns.iter().map(|c| c.data_type.clone()).collect(),
            total_rows: page.total_rows,
            offset: 0,
            truncated: run.truncated,
        };
        let format = wire_format(args.format);
        tokio::task::spawn_blocking(move || encode(format, page.schema, page.batches, envelope, &mut out))
            .await
            .map_err(|e| CliError::internal(e.to_string()))??;
    }
    // The run stays in the history; its result must outlive this process like a server's would.
    wired
        .results
        .persist()
        .await
        .map_err(|e| CliError::new(e.kind(), e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

async fn via_server(config: &Config, url: &str, project: &ProjectId, args: SqlArgs) -> CliResult<ExitCode> {
    let client = reqwest::Client::new();
    let token = server_token(config).await?;
    let req = |r: reqwest::RequestBuilder| {
        let r = r
            .header("x-pluto-project", project.as_str())
            .header("x-pluto-actor", "cli");
        match &token {
            Some(t) => r.bearer_auth(t.expose_secret()),
            None => r,
        }
    };
    let format = wire_format(args.format);
    let net = |e: reqwest::Error| CliError::unavailable(format!("server at {url}: {e}"));
    let body = serde_json::json!({
        "sql": args.sql, "timeout_ms": args.timeout_ms, "max_rows": args.max_rows, "read_only": args.read_only
    });
    let pb = spinner();
    let mut resp = req(client.post(format!("{url}/api/v1/query?wait=2")))
        .header("accept", format.content_type())
        .json(&body)
        .send()
        .await
        .map_err(net)?;
    if resp.status() == reqwest::StatusCode::ACCEPTED {
        let job: serde_json::Value = resp.json().await.map_err(net)?;
        let id = job["id"].as_str().unwrap_or_default().to_owned();
        follow_events(&client, url, &id, &pb, &req).await?;
        resp = req(client.get(format!("{url}/api/v1/query/{id}/result")))
            .header("accept", format.content_type())
            .send()
            .await
            .map_err(net)?;
    }
    pb.finish_and_clear();
    let status = resp.status();
    if !status.is_success() {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(problem_error(status.as_u16(), &body));
    }
    let total: u64 = resp
        .headers()
        .get("x-total-rows")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut out = output(&args)?;
    if args.format == SqlFormat::Table {
        let bytes = resp.bytes().await.map_err(net)?;
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| CliError::internal(e.to_string()))?;
        let batches: Vec<RecordBatch> = reader
            .take(TABLE_ROWS)
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::internal(e.to_string()))?;
        print_table(&batches, total, &mut out)?;
    } else {
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk.map_err(net)?)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Follows the job's Server-Sent Events until it finishes, showing rows as they arrive.
async fn follow_events(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    pb: &ProgressBar,
    req: &dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> CliResult<()> {
    let resp = req(client.get(format!("{url}/api/v1/query/{id}/events")))
        .send()
        .await
        .map_err(|e| CliError::unavailable(e.to_string()))?;
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(
            &chunk.map_err(|e| CliError::unavailable(e.to_string()))?,
        ));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event.lines().find_map(|l| l.strip_prefix("data:")).unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap_or_default();
            if let Some(rows) = v["rows"].as_u64() {
                pb.set_message(format!("{rows} rows"));
            }
            if matches!(
                v["status"].as_str(),
                Some("completed" | "failed" | "cancelled" | "timed_out")
            ) {
                return Ok(());
            }
        }
    }
    Ok(())
}
