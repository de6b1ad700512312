//! dbt's structured log (`--log-format json`): one JSON object per line, `{"info": {...}, "data": {...}}`.
//! `info` is common to every event (`name`, `code`, `level`, `msg`, `invocation_id`, `ts`...); `data` is the
//! event's own message as dbt-core's `core_types.proto` defines it. The events read here:
//!
//! | event (code)                | data read                                                                    |
//! |-----------------------------|------------------------------------------------------------------------------|
//! | `MainReportVersion` (A001)  | `version` (`=1.11.16`)                                                       |
//! | `FoundStats` (W006), `ConcurrencyLine` (Q027) | - : the project and profile are loaded                    |
//! | `NodeStart` (Q024, debug)   | `node_info.{unique_id, resource_type, node_name}`                            |
//! | `NodeFinished` (Q025, debug)| `node_info` and `run_result.{status, message, execution_time, num_failures, adapter_response}` |
//! | `CompiledNode` (Q042)       | `unique_id`, `compiled`                                                      |
//! | `PrintEvent` (Z052)         | `msg`: under `ls --output json`, one node per line                           |
//! | `MainEncounteredError` (Z002)| `exc`: why dbt stopped                                                      |
//! | `CommandCompleted` (Q039, debug) | `success`, `elapsed`                                                    |
//!
//! Every event at info level and above is also forwarded as a log line with dbt's rendered `msg`.

use std::time::Duration;

use pluto_duck_application::ports::{
    CompiledSql, DbtCommand, DbtEvent, DbtLogLevel, DbtResourceType, NodeResult, NodeStatus,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Line {
    info: Info,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct Info {
    name: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    invocation_id: String,
}

/// What the stream told about the invocation, besides the events it forwards.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub invocation_id: Option<String>,
    pub dbt_version: Option<String>,
    /// dbt got past loading the project and its profile (it reported what it found, or ran a node).
    pub project_loaded: bool,
    /// Any JSON event at all: dbt's logger was up.
    pub saw_events: bool,
    /// `MainEncounteredError`: the exception that stopped dbt.
    pub main_error: Option<String>,
    /// `NodeFinished` events, in order.
    pub finished: Vec<NodeResult>,
    pub listed: Vec<String>,
    pub compiled: Vec<CompiledSql>,
}

pub(crate) struct EventReader {
    command: DbtCommand,
    pub collected: Collected,
}

impl EventReader {
    pub fn new(command: DbtCommand) -> Self {
        EventReader {
            command,
            collected: Collected::default(),
        }
    }

    /// Reads one stdout line, appending what it means to `out` in order: the structured event first, then
    /// the log line.
    pub fn read_line(&mut self, line: &str, out: &mut Vec<DbtEvent>) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        let Ok(Line { info, data }) = serde_json::from_str::<Line>(line) else {
            out.push(DbtEvent::Log {
                level: DbtLogLevel::Info,
                event: "stdout".into(),
                message: line.to_owned(),
            });
            return;
        };
        let c = &mut self.collected;
        c.saw_events = true;
        if c.invocation_id.is_none() && !info.invocation_id.is_empty() {
            c.invocation_id = Some(info.invocation_id.clone());
        }
        match info.name.as_str() {
            "MainReportVersion" => {
                let version = str_at(&data, "version").trim_start_matches('=').to_owned();
                c.dbt_version = Some(version.clone());
                out.push(DbtEvent::InvocationStarted {
                    invocation_id: info.invocation_id.clone(),
                    dbt_version: version,
                });
            }
            "FoundStats" | "ConcurrencyLine" => c.project_loaded = true,
            "NodeStart" => {
                c.project_loaded = true;
                let node = &data["node_info"];
                let unique_id = str_at(node, "unique_id").to_owned();
                out.push(DbtEvent::NodeStarted {
                    resource_type: resource_type(node, &unique_id),
                    name: node_name(node, &unique_id),
                    unique_id,
                });
            }
            "NodeFinished" => {
                c.project_loaded = true;
                let result = node_finished(&data);
                c.finished.push(result.clone());
                out.push(DbtEvent::NodeFinished(result));
            }
            "CompiledNode" => {
                let unique_id = str_at(&data, "unique_id");
                if !unique_id.is_empty() {
                    c.compiled.push(CompiledSql {
                        unique_id: unique_id.to_owned(),
                        sql: str_at(&data, "compiled").to_owned(),
                    });
                }
            }
            "PrintEvent" if self.command == DbtCommand::List => {
                if let Ok(v) = serde_json::from_str::<Value>(&info.msg) {
                    if let Some(id) = v.get("unique_id").and_then(Value::as_str) {
                        c.listed.push(id.to_owned());
                    }
                }
            }
            "MainEncounteredError" => {
                let exc = str_at(&data, "exc");
                c.main_error = Some(if exc.is_empty() {
                    info.msg.clone()
                } else {
                    exc.to_owned()
                });
            }
            _ => {}
        }
        let level = match info.level.as_str() {
            "debug" => DbtLogLevel::Debug,
            "warn" | "warning" => DbtLogLevel::Warn,
            "error" => DbtLogLevel::Error,
            _ => DbtLogLevel::Info,
        };
        if level > DbtLogLevel::Debug {
            out.push(DbtEvent::Log {
                level,
                event: info.name,
                message: info.msg,
            });
        }
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn resource_type(node_info: &Value, unique_id: &str) -> DbtResourceType {
    match str_at(node_info, "resource_type") {
        "" => DbtResourceType::of_unique_id(unique_id),
        t => DbtResourceType::parse(t),
    }
}

fn node_name(node_info: &Value, unique_id: &str) -> String {
    match str_at(node_info, "node_name") {
        "" => name_of_unique_id(unique_id),
        n => n.to_owned(),
    }
}

/// `model.shop.orders` -> `orders`; `test.shop.unique_orders_id.9c1` -> `unique_orders_id`;
/// `source.shop.raw.orders` -> `orders`.
pub(crate) fn name_of_unique_id(unique_id: &str) -> String {
    let parts: Vec<&str> = unique_id.split('.').collect();
    match parts.as_slice() {
        ["source", _, _, table, ..] => (*table).to_owned(),
        [_, _, name, ..] => (*name).to_owned(),
        _ => unique_id.to_owned(),
    }
}

pub(crate) fn seconds(v: Option<f64>) -> Duration {
    v.filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or_default()
}

pub(crate) fn rows_affected(adapter_response: &Value) -> Option<u64> {
    adapter_response
        .get("rows_affected")
        .and_then(|v| v.as_u64().or_else(|| v.as_i64().and_then(|i| u64::try_from(i).ok())))
}

fn node_finished(data: &Value) -> NodeResult {
    let node = &data["node_info"];
    let run = &data["run_result"];
    let unique_id = str_at(node, "unique_id").to_owned();
    let resource_type = resource_type(node, &unique_id);
    let status = match str_at(run, "status") {
        "" => str_at(node, "node_status"),
        s => s,
    };
    let failures = matches!(resource_type, DbtResourceType::Test | DbtResourceType::UnitTest)
        .then(|| run.get("num_failures").and_then(Value::as_u64))
        .flatten();
    NodeResult {
        name: node_name(node, &unique_id),
        status: NodeStatus::parse(status),
        execution_time: seconds(run.get("execution_time").and_then(Value::as_f64)),
        rows_affected: rows_affected(&run["adapter_response"]),
        message: non_empty(str_at(run, "message")),
        failures,
        relation_name: non_empty(str_at(&node["node_relation"], "relation_name")),
        resource_type,
        unique_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as dbt-core 1.11.16 with dbt-duckdb 1.11.1 writes them (trimmed).
    const VERSION: &str = r#"{"data": {"log_version": 3, "version": "=1.11.16"}, "info": {"category": "", "code": "A001", "extra": {}, "invocation_id": "adb5a25b", "level": "info", "msg": "Running with dbt=1.11.16", "name": "MainReportVersion", "pid": 22379, "thread": "MainThread", "ts": "2026-12-03T08:03:45.255552Z"}}"#;
    const START: &str = r#"{"data": {"node_info": {"materialized": "view", "node_name": "stg_bad", "node_path": "staging/stg_bad.sql", "node_relation": {"alias": "stg_bad", "database": "d", "relation_name": "\"d\".\"main\".\"stg_bad\"", "schema": "main"}, "node_status": "started", "resource_type": "model", "unique_id": "model.core.stg_bad"}}, "info": {"code": "Q024", "invocation_id": "adb5a25b", "level": "debug", "msg": "Began running node model.core.stg_bad", "name": "NodeStart"}}"#;
    const FINISHED: &str = r#"{"data": {"node_info": {"materialized": "view", "node_name": "stg_bad", "node_relation": {"relation_name": "\"d\".\"main\".\"stg_bad\""}, "node_status": "error", "resource_type": "model", "unique_id": "model.core.stg_bad"}, "run_result": {"adapter_response": {}, "execution_time": 0.2895434, "message": "Runtime Error in model stg_bad\n  Catalog Error: Table with name nonexistent_tbl does not exist!", "num_failures": 0, "status": "error", "thread": "Thread-1 (worker)", "timing_info": []}}, "info": {"code": "Q025", "invocation_id": "adb5a25b", "level": "debug", "msg": "Finished running node model.core.stg_bad", "name": "NodeFinished"}}"#;
    const TEST_FAILED: &str = r#"{"data": {"node_info": {"node_name": "unique_orders_id", "resource_type": "test", "unique_id": "test.core.unique_orders_id.9c1", "node_relation": {"relation_name": ""}}, "run_result": {"adapter_response": {"_message": "OK", "rows_affected": 3}, "execution_time": 0.05, "message": "Got 3 results, configured to fail if != 0", "num_failures": 3, "status": "fail"}}, "info": {"invocation_id": "adb5a25b", "level": "debug", "msg": "", "name": "NodeFinished"}}"#;
    const ERROR: &str = r#"{"data": {"exc": "IO Error: Could not set lock on file \"/x/dbt.duckdb\""}, "info": {"invocation_id": "adb5a25b", "level": "error", "msg": "Encountered an error:\nIO Error: Could not set lock on file", "name": "MainEncounteredError"}}"#;

    fn read(reader: &mut EventReader, line: &str) -> Vec<DbtEvent> {
        let mut out = Vec::new();
        reader.read_line(line, &mut out);
        out
    }

    #[test]
    fn reads_version_nodes_and_errors() {
        let mut r = EventReader::new(DbtCommand::Build);
        let ev = read(&mut r, VERSION);
        assert_eq!(
            ev[0],
            DbtEvent::InvocationStarted {
                invocation_id: "adb5a25b".into(),
                dbt_version: "1.11.16".into()
            }
        );
        assert!(
            matches!(&ev[1], DbtEvent::Log { level: DbtLogLevel::Info, event, .. } if event == "MainReportVersion")
        );

        let ev = read(&mut r, START);
        assert_eq!(
            ev,
            vec![DbtEvent::NodeStarted {
                unique_id: "model.core.stg_bad".into(),
                resource_type: DbtResourceType::Model,
                name: "stg_bad".into()
            }],
            "a debug event forwards no log line"
        );

        let ev = read(&mut r, FINISHED);
        let DbtEvent::NodeFinished(n) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(n.status, NodeStatus::Error);
        assert_eq!(n.failures, None, "a model has no failures count");
        assert_eq!(n.relation_name.as_deref(), Some(r#""d"."main"."stg_bad""#));
        assert!(n.message.as_deref().unwrap().contains("nonexistent_tbl"));
        assert_eq!(n.execution_time, Duration::from_secs_f64(0.2895434));

        let ev = read(&mut r, TEST_FAILED);
        let DbtEvent::NodeFinished(t) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (t.status.clone(), t.failures, t.rows_affected),
            (NodeStatus::Fail, Some(3), Some(3))
        );
        assert_eq!(t.relation_name, None);

        read(&mut r, ERROR);
        let c = &r.collected;
        assert_eq!(c.invocation_id.as_deref(), Some("adb5a25b"));
        assert!(c.project_loaded);
        assert_eq!(c.finished.len(), 2);
        assert!(c
            .main_error
            .as_deref()
            .unwrap()
            .starts_with("IO Error: Could not set lock"));
    }

    #[test]
    fn other_lines_are_logged_and_ls_lines_listed() {
        let mut r = EventReader::new(DbtCommand::List);
        let ev = read(&mut r, "Traceback (most recent call last):");
        assert!(matches!(&ev[0], DbtEvent::Log { event, .. } if event == "stdout"));
        assert!(!r.collected.saw_events);
        read(
            &mut r,
            r#"{"data": {"msg": "{\"unique_id\": \"model.core.orders\"}"}, "info": {"level": "info", "msg": "{\"unique_id\": \"model.core.orders\"}", "name": "PrintEvent", "invocation_id": "i"}}"#,
        );
        assert_eq!(r.collected.listed, ["model.core.orders"]);
    }

    #[test]
    fn names_come_from_unique_ids_when_dbt_gives_none() {
        assert_eq!(name_of_unique_id("model.shop.orders"), "orders");
        assert_eq!(name_of_unique_id("test.shop.unique_orders_id.9c1"), "unique_orders_id");
        assert_eq!(name_of_unique_id("source.shop.raw.orders"), "orders");
        assert_eq!(seconds(Some(-1.0)), Duration::ZERO);
        assert_eq!(rows_affected(&serde_json::json!({"rows_affected": -1})), None);
    }
}
