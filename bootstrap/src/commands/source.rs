//! `pluto-duck source add|list|show|remove|tables`.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use serde_json::{json, Value};

use super::api_client::ApiClient;
use crate::cli::{SourceAddArgs, SourceCommand};
use crate::config::Config;
use crate::error::{CliError, CliResult};

pub(crate) fn read_password() -> CliResult<String> {
    let mut value = String::new();
    if std::io::stdin().is_terminal() {
        eprint!("password: ");
        std::io::stdin().read_line(&mut value)?;
    } else {
        std::io::stdin().read_to_string(&mut value)?;
    }
    Ok(value.trim_end_matches(['\n', '\r']).to_owned())
}

fn add_body(a: &SourceAddArgs) -> CliResult<Value> {
    let mut body = json!({ "name": a.name, "description": a.description.clone().unwrap_or_default() });
    let obj = body.as_object_mut().ok_or_else(|| CliError::internal("body"))?;
    for (k, v) in [
        ("dsn", a.dsn.clone().map(Value::from)),
        ("kind", a.kind.clone().map(Value::from)),
        ("host", a.host.clone().map(Value::from)),
        ("port", a.port.map(Value::from)),
        ("database", a.database.clone().map(Value::from)),
        ("user", a.user.clone().map(Value::from)),
        ("path", a.path.as_ref().map(|p| Value::from(p.display().to_string()))),
        ("location", a.location.clone().map(Value::from)),
        ("format", a.format.clone().map(Value::from)),
        ("endpoint", a.endpoint.clone().map(Value::from)),
        ("region", a.region.clone().map(Value::from)),
        ("key_id", a.key_id.clone().map(Value::from)),
        ("url_style", a.path_style.then(|| Value::from("path"))),
        ("use_ssl", a.no_ssl.then(|| Value::from(false))),
    ] {
        if let Some(v) = v {
            obj.insert(k.into(), v);
        }
    }
    if a.writable {
        obj.insert("read_only".into(), Value::from(false));
    }
    if a.password_stdin {
        let key = if a.kind.as_deref() == Some("s3") {
            "secret_access_key"
        } else {
            "password"
        };
        obj.insert(key.into(), Value::from(read_password()?));
    }
    Ok(body)
}

pub async fn source(config: &Config, command: SourceCommand, project: Option<String>) -> CliResult<ExitCode> {
    let api = ApiClient::connect(config).await?;
    let p = project.as_deref();
    match command {
        SourceCommand::Add(a) => {
            let s = api.call("POST", "/api/v1/source", p, Some(add_body(&a)?)).await?;
            println!(
                "attached {} ({}) as {}",
                s["name"].as_str().unwrap_or_default(),
                s["kind"].as_str().unwrap_or_default(),
                s["alias"].as_str().unwrap_or_default()
            );
        }
        SourceCommand::List => {
            let list = api.call("GET", "/api/v1/source", p, None).await?;
            println!("{:<24} {:<9} {:<9} DESCRIPTION", "NAME", "KIND", "STATE");
            for s in list.as_array().into_iter().flatten() {
                let state = match s["error"].as_str() {
                    Some(e) => format!("failed: {e}"),
                    None => s["state"].as_str().unwrap_or_default().to_owned(),
                };
                println!(
                    "{:<24} {:<9} {:<9} {}",
                    s["name"].as_str().unwrap_or_default(),
                    s["kind"].as_str().unwrap_or_default(),
                    state,
                    s["description"].as_str().unwrap_or_default()
                );
            }
        }
        SourceCommand::Show { name } => {
            let s = api.call("GET", &format!("/api/v1/source/{name}"), p, None).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&s).map_err(|e| CliError::internal(e.to_string()))?
            );
        }
        SourceCommand::Remove { name } => {
            api.call("DELETE", &format!("/api/v1/source/{name}"), p, None).await?;
            println!("detached {name}");
        }
        SourceCommand::Tables { name, schema } => {
            let path = match &schema {
                Some(s) => format!("/api/v1/source/{name}/tables?schema={s}"),
                None => format!("/api/v1/source/{name}/tables"),
            };
            let tables = api.call("GET", &path, p, None).await?;
            for t in tables.as_array().into_iter().flatten() {
                let rows = t["estimated_rows"]
                    .as_u64()
                    .map(|n| format!("~{n} rows"))
                    .unwrap_or_default();
                println!(
                    "{}.{}\t{}\t{rows}",
                    t["schema"].as_str().unwrap_or_default(),
                    t["name"].as_str().unwrap_or_default(),
                    t["kind"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
