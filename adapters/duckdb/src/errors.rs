use std::path::Path;

use pluto_duck_application::ports::WarehouseError;

use crate::extensions::install_hint;

/// DuckDB errors to port errors: user mistakes become `Sql` with the absolute position DuckDB points at,
/// missing extensions name their fix, an unusable engine is `Unavailable`.
pub(crate) fn map_duckdb_error(e: &duckdb::Error, statement: &str, offset: u64, ext_dir: &Path) -> WarehouseError {
    let msg = e.to_string();
    if let Some(missing) = missing_extension(&msg, ext_dir) {
        return missing;
    }
    let head = msg.split("\n\nLINE ").next().unwrap_or(&msg).trim().to_owned();
    if head.starts_with("INTERRUPT") {
        return WarehouseError::Interrupted;
    }
    if head.starts_with("FATAL") || head.contains("database has been invalidated") {
        return WarehouseError::Unavailable(head);
    }
    if lake_unreachable(&head) {
        return WarehouseError::Unavailable(format!("the shared warehouse is unreachable: {head}"));
    }
    if crate::lake::is_commit_conflict(&head) {
        return WarehouseError::Conflict(format!(
            "another server changed the same tables at the same moment and this commit was retried and lost; \
             try again: {head}"
        ));
    }
    if let Some(refusal) = sandbox_refusal(&head) {
        return refusal;
    }
    WarehouseError::Sql {
        position: caret_position(&msg, statement).map(|p| p + offset),
        message: head,
    }
}

/// The lake's catalog (PostgreSQL) or its object store cannot be reached: a 503, which passes once they are back.
/// Only errors that name the lake count: a PostgreSQL *source* that refuses a connection is the user's input.
fn lake_unreachable(head: &str) -> bool {
    let lake = ["DuckLake", "ducklake", "__pd_lake_meta"]
        .iter()
        .any(|m| head.contains(m));
    lake && [
        "Unable to connect to Postgres",
        "Failed to query most recent snapshot for DuckLake",
        "server closed the connection unexpectedly",
        "terminating connection due to administrator command",
        "no connection to the server",
        "Could not establish connection",
        "Connection refused",
    ]
    .iter()
    .any(|m| head.contains(m))
}

/// The engine's own refusals inside a locked sandbox, said in our terms.
fn sandbox_refusal(head: &str) -> Option<WarehouseError> {
    let rule = if head.starts_with("Permission Error") && head.contains("Cannot access") {
        let what = head
            .split('"')
            .nth(1)
            .map(|f| format!("{f} is outside the project's sandbox"))
            .unwrap_or_else(|| "that file is outside the project's sandbox".into());
        format!(
            "{what}: a project's SQL reads its own files and its sources' files only; attach the file as a \
             source, or add its folder to sandbox.allowed_directories [rule: files]"
        )
    } else if head.contains("the configuration has been locked") {
        "settings are the server's and cannot be changed from SQL [rule: statements]".to_owned()
    } else if head.starts_with("Permission Error") {
        format!("{} [rule: statements]", head.trim_start_matches("Permission Error: "))
    } else {
        return None;
    };
    Some(WarehouseError::Forbidden(rule))
}

/// A failure of work whose token was cancelled is the interruption, whatever the engine said.
pub(crate) fn interrupted_or(
    e: WarehouseError,
    cancel: &tokio_util::sync::CancellationToken,
    _ext_dir: &Path,
) -> WarehouseError {
    if cancel.is_cancelled() {
        WarehouseError::Interrupted
    } else {
        e
    }
}

/// DuckDB shows the failing line as `LINE n: <text>` and a caret under the culprit. The shown text may be a
/// window of a long line (`...`), so find it in the statement to get the absolute offset.
fn caret_position(msg: &str, statement: &str) -> Option<u64> {
    let mut lines = msg.lines().skip_while(|l| !l.starts_with("LINE "));
    let shown = lines.next()?;
    let caret_line = lines.next()?;
    let (label, text) = shown.split_once(": ")?;
    let line_no: usize = label.trim_start_matches("LINE ").parse().ok()?;
    let caret_col = caret_line.find('^')?.checked_sub(label.len() + 2)?;
    let snippet = text.trim_start_matches("...");
    let skipped = text.len() - snippet.len();
    let snippet = snippet.trim_end_matches("...");
    let line_start: usize = statement
        .split_inclusive('\n')
        .take(line_no.saturating_sub(1))
        .map(|l| l.chars().count())
        .sum();
    let line = statement.split('\n').nth(line_no.saturating_sub(1))?;
    let at = line.find(snippet).map(|b| line[..b].chars().count()).unwrap_or(0);
    Some((line_start + at + caret_col.saturating_sub(skipped)) as u64)
}

pub(crate) fn missing_extension(msg: &str, dir: &Path) -> Option<WarehouseError> {
    let lower = msg.to_ascii_lowercase();
    if !(lower.contains("extension") && (lower.contains("not found") || lower.contains("autoinstall"))) {
        return None;
    }
    let aliases = [
        ("postgres", "postgres_scanner"),
        ("mysql", "mysql_scanner"),
        ("sqlite", "sqlite_scanner"),
        ("httpfs", "httpfs"),
        ("ducklake", "ducklake"),
        ("tpch", "tpch"),
    ];
    let (_, name) = aliases.iter().find(|(needle, _)| lower.contains(needle))?;
    Some(WarehouseError::MissingExtension(format!(
        "DuckDB extension {name} is not installed ({}); {}",
        msg.lines().next().unwrap_or(msg),
        install_hint(name, dir)
    )))
}

#[cfg(test)]
mod tests {
    use super::{caret_position, lake_unreachable, sandbox_refusal};
    use pluto_duck_application::ports::WarehouseError;

    #[test]
    fn only_the_lake_being_unreachable_is_an_outage() {
        assert!(lake_unreachable(
            "IO Error: Failed to query most recent snapshot for DuckLake: Connection refused"
        ));
        // A PostgreSQL source that refuses the user's password is bad input, not our outage.
        assert!(!lake_unreachable(
            "IO Error: Unable to connect to Postgres at \"host=127.0.0.1\": password authentication failed"
        ));
    }

    #[test]
    fn sandbox_refusals_name_the_rule() {
        let e = sandbox_refusal(
            "Permission Error: Cannot access file \"/etc/passwd\" - file system operations are disabled by configuration",
        );
        match e {
            Some(WarehouseError::Forbidden(m)) => {
                assert!(m.contains("/etc/passwd") && m.contains("rule: files"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(sandbox_refusal("Binder Error: x").is_none());
    }

    #[test]
    fn finds_the_caret() {
        let msg = "Parser Error: syntax error at or near \"FORM\"\n\nLINE 1: SELECT 1 FORM t\n                 ^";
        assert_eq!(caret_position(msg, "SELECT 1 FORM t"), Some(9));
        let msg2 = "Binder Error: x\n\nLINE 2: from nope\n             ^";
        assert_eq!(caret_position(msg2, "select *\nfrom nope"), Some(14));
    }
}
