//! What SQL from a person, a saved analysis, a board or the agent may do inside a project's sandbox. The engine
//! itself refuses files outside the project's allowed directories; these rules cover what it cannot: statements
//! that change the engine or reach outside it (ATTACH, INSTALL, SET, ...) and functions that open files or
//! connections without asking the engine's file system (the scanner extensions' own functions).

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, ObjectNamePart, TableFactor, Visit, Visitor};
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::sql::{function_calls, split_statements, with_ast, SqlStatement};
use crate::DomainError;

/// One rule a statement broke, for the error a client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRule {
    pub rule: &'static str,
    pub detail: String,
}

/// Functions that open a database file, a connection or run SQL text of their own: the engine's file-system
/// checks do not apply to them. Matched by name; prefixes end in `_`.
const DENIED_FUNCTIONS: [&str; 6] = [
    "sqlite_",
    "postgres_",
    "mysql_",
    "ducklake_",
    "json_execute_serialized_sql",
    "read_postgres_binary",
];
/// Table functions that run a SQL string; a name this common is only denied as a table function.
const DENIED_TABLE_FUNCTIONS: [&str; 2] = ["query", "query_table"];

/// Statement kinds (leading keywords) that change the engine or reach outside the project.
fn denied_kind(kind: &str) -> Option<&'static str> {
    let first = kind.split(' ').next().unwrap_or_default();
    Some(match first {
        "ATTACH" | "DETACH" | "USE" => {
            "ATTACH, DETACH and USE are not available: a project's SQL sees its own database and its sources"
        }
        "INSTALL" | "LOAD" => "extensions are provisioned by Pluto-Duck; INSTALL and LOAD are not available",
        "FORCE" if kind == "FORCE INSTALL" => {
            "extensions are provisioned by Pluto-Duck; INSTALL and LOAD are not available"
        }
        "UPDATE" if kind == "UPDATE EXTENSIONS" => "extensions are provisioned by Pluto-Duck",
        "SET" | "RESET" => "settings are the server's: SET and RESET are not available",
        "EXPORT" | "IMPORT" => {
            "EXPORT and IMPORT DATABASE write or read files outside the project: use the export endpoints"
        }
        _ => return None,
    })
}

/// Checks `sql` (one or more statements) against the sandbox rules; the first broken rule, naming the
/// statement, is the error.
pub fn check_user_sql(sql: &str) -> Result<Vec<SqlStatement>, DomainError> {
    let statements = split_statements(sql)?;
    for (i, s) in statements.iter().enumerate() {
        if let Some(rule) = sandbox_violation(s) {
            return Err(DomainError::Sandbox(format!(
                "statement {} ({}) is not allowed in a project's sandbox: {} [rule: {}]",
                i + 1,
                s.kind,
                rule.detail,
                rule.rule
            )));
        }
    }
    Ok(statements)
}

/// The rule `stmt` breaks, if any.
pub fn sandbox_violation(stmt: &SqlStatement) -> Option<SandboxRule> {
    if let Some(detail) = denied_kind(&stmt.kind) {
        return Some(SandboxRule {
            rule: "statements",
            detail: detail.to_owned(),
        });
    }
    let first = stmt.kind.split(' ').next().unwrap_or_default();
    if matches!(first, "PRAGMA" | "CALL") && !stmt.is_read {
        return Some(SandboxRule {
            rule: "statements",
            detail: "only reporting PRAGMAs (table_info, show_tables, database_size, ...) are available".into(),
        });
    }
    if stmt.kind.ends_with(" SECRET") || stmt.kind == "CREATE PERSISTENT" {
        return Some(SandboxRule {
            rule: "secrets",
            detail: "secrets are managed by Pluto-Duck's sources, not by SQL".into(),
        });
    }
    if first == "COPY" && copies_out(&stmt.text) {
        return Some(SandboxRule {
            rule: "files",
            detail: "COPY ... TO writes files: use the export endpoints (CSV, Parquet) instead".into(),
        });
    }
    if let Some(name) = internal_catalog(&stmt.text) {
        return Some(SandboxRule {
            rule: "catalogs",
            detail: format!("{name} is the shared warehouse's own catalog database, not the project's"),
        });
    }
    for f in function_calls(&stmt.text) {
        if DENIED_FUNCTIONS
            .iter()
            .any(|d| if d.ends_with('_') { f.starts_with(d) } else { f == *d })
        {
            return Some(SandboxRule {
                rule: "functions",
                detail: format!(
                    "{f}() opens files or connections of its own; attach the database as a source and query it by name"
                ),
            });
        }
    }
    if let Some(f) = table_function_denied(&stmt.text) {
        return Some(SandboxRule {
            rule: "functions",
            detail: format!("{f}() runs SQL text of its own; write the query itself"),
        });
    }
    None
}

/// Catalog databases only Pluto-Duck may read: the hybrid profile's lake catalog (in the control plane's
/// PostgreSQL). Any identifier naming one counts, quoted or not.
const INTERNAL_CATALOGS: [&str; 2] = ["__pd_lake_meta", "__ducklake_metadata"];

fn internal_catalog(text: &str) -> Option<String> {
    let tokens = Tokenizer::new(&sqlparser::dialect::DuckDbDialect {}, text)
        .tokenize()
        .ok()?;
    tokens.iter().find_map(|t| match t {
        Token::Word(w) => {
            let v = w.value.to_ascii_lowercase();
            INTERNAL_CATALOGS
                .iter()
                .any(|c| v.starts_with(c))
                .then_some(w.value.clone())
        }
        _ => None,
    })
}

/// `COPY ... TO` (or `COPY FROM DATABASE`), told from the top-level tokens after `COPY`.
fn copies_out(text: &str) -> bool {
    let Ok(tokens) = Tokenizer::new(&sqlparser::dialect::DuckDbDialect {}, text).tokenize() else {
        return true;
    };
    let mut depth = 0i32;
    for t in tokens.iter().skip(1) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Word(w) if depth == 0 && w.quote_style.is_none() => match w.value.to_ascii_uppercase().as_str() {
                "TO" => return true,
                "FROM" => return false,
                _ => {}
            },
            _ => {}
        }
    }
    // Neither keyword at top level: not a COPY we understand.
    true
}

/// A denied table function (`query(...)`, `query_table(...)`) in a FROM clause; when the parser does not know
/// the statement, any `query(` call counts.
fn table_function_denied(text: &str) -> Option<&'static str> {
    struct Finder(Option<&'static str>);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            let name = match factor {
                TableFactor::Table {
                    name, args: Some(_), ..
                } => name.0.last(),
                TableFactor::Function { name, .. } => name.0.last(),
                _ => None,
            };
            if let Some(ObjectNamePart::Identifier(i)) = name {
                let n = i.value.to_ascii_lowercase();
                if let Some(d) = DENIED_TABLE_FUNCTIONS.iter().find(|d| **d == n) {
                    self.0 = Some(d);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            // DuckDB lets a table function stand where the parser sees a call expression (LATERAL, subqueries).
            if let Expr::Function(f) = expr {
                if let Some(ObjectNamePart::Identifier(i)) = f.name.0.last() {
                    let n = i.value.to_ascii_lowercase();
                    if n == "query_table" {
                        self.0 = Some("query_table");
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let parsed = with_ast(text, |parsed| match parsed {
        Ok(statements) => {
            let mut finder = Finder(None);
            let _ = statements.visit(&mut finder);
            Some(finder.0)
        }
        Err(_) => None,
    });
    match parsed {
        Ok(Some(found)) => found,
        // Unknown to the parser (or too long): any call of those names counts.
        _ => function_calls(text)
            .into_iter()
            .find_map(|f| DENIED_TABLE_FUNCTIONS.iter().find(|d| **d == f).copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> String {
        match check_user_sql(sql) {
            Err(DomainError::Sandbox(m)) => m,
            other => panic!("{sql} was not refused by the sandbox: {other:?}"),
        }
    }

    #[test]
    fn engine_changing_statements_are_refused() {
        for sql in [
            "ATTACH '/tmp/x.db' AS x",
            "DETACH src",
            "USE other",
            "INSTALL httpfs",
            "FORCE INSTALL httpfs",
            "LOAD httpfs",
            "SET threads = 1",
            "SET GLOBAL memory_limit = '1MB'",
            "RESET threads",
            "PRAGMA threads=1",
            "CALL dbgen(sf = 1)",
            "EXPORT DATABASE '/tmp/out'",
            "IMPORT DATABASE '/tmp/in'",
            "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
            "CREATE OR REPLACE PERSISTENT SECRET s (TYPE s3)",
            "DROP SECRET s",
            "COPY (SELECT 42) TO '/tmp/x.csv'",
            "COPY t TO 'x.parquet' (FORMAT parquet)",
            "SELECT 1; SET threads = 2",
        ] {
            let m = refused(sql);
            assert!(m.contains("[rule: "), "{m}");
        }
    }

    #[test]
    fn functions_that_bypass_the_file_system_are_refused() {
        for sql in [
            "SELECT * FROM sqlite_scan('/etc/passwd', 't')",
            "SELECT * FROM \"sqlite_scan\"('/x', 't')",
            "CALL sqlite_attach('/x.db')",
            "SELECT * FROM postgres_scan('host=10.0.0.1', 'public', 't')",
            "SELECT * FROM postgres_query('pg', 'DELETE FROM t RETURNING *')",
            "SELECT * FROM mysql_query('m', 'select 1')",
            "SELECT * FROM query('SELECT * FROM sqlite_scan(''x'', ''t'')')",
            "FROM query_table('t')",
            "PIVOT (SELECT * FROM sqlite_scan('/x', 't')) ON k USING sum(v)",
            "SELECT json_execute_serialized_sql('{}')",
        ] {
            let m = refused(sql);
            assert!(
                m.contains("rule: functions") || m.contains("rule: statements"),
                "{sql}: {m}"
            );
        }
    }

    #[test]
    fn the_lake_catalog_database_is_out_of_reach() {
        for sql in [
            "SELECT * FROM __pd_lake_meta.lake_other.ducklake_table",
            "SELECT * FROM \"__PD_LAKE_META\".public.secrets",
            "CREATE TABLE x AS SELECT * FROM __ducklake_metadata_warehouse.public.runs",
        ] {
            assert!(refused(sql).contains("rule: catalogs"), "{sql}");
        }
    }

    #[test]
    fn ordinary_sql_passes() {
        for sql in [
            "SELECT * FROM orders WHERE note = 'ATTACH me'",
            "CREATE TABLE t AS SELECT 1 AS query",
            "WITH query AS (SELECT 1) SELECT * FROM query",
            "COPY t FROM 'data/in.csv'",
            "INSERT INTO t VALUES (1)",
            "SELECT * FROM read_csv('data/x.csv')",
            "PRAGMA table_info('t')",
            "SUMMARIZE orders",
            "PIVOT orders ON region USING sum(amount)",
            "SELECT count(*) FROM duckdb_tables()",
            "CHECKPOINT",
            "SELECT postgres_like_name FROM t",
            "SELECT * FROM sales AT (VERSION => 3)",
            "SELECT * FROM warehouse.main.sales AT (TIMESTAMP => now() - INTERVAL 1 HOUR)",
        ] {
            check_user_sql(sql).unwrap_or_else(|e| panic!("{sql} refused: {e}"));
        }
    }
}
