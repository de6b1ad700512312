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
    WarehouseError::Sql {
        position: caret_position(&msg, statement).map(|p| p + offset),
        message: head,
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
    use super::caret_position;

    #[test]
    fn finds_the_caret() {
        let msg = "Parser Error: syntax error at or near \"FORM\"\n\nLINE 1: SELECT 1 FORM t\n                 ^";
        assert_eq!(caret_position(msg, "SELECT 1 FORM t"), Some(9));
        let msg2 = "Binder Error: x\n\nLINE 2: from nope\n             ^";
        assert_eq!(caret_position(msg2, "select *\nfrom nope"), Some(14));
    }
}
