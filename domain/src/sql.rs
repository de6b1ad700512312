//! Splitting a request into statements and classifying each as a read or a write. The lexer and parser are
//! sqlparser's (DuckDB dialect); DuckDB syntax the parser does not know falls back to the statement's leading
//! keywords, conservatively: anything not known to be a read counts as a write.

use sqlparser::ast::{SetExpr, Statement};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::DomainError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStatement {
    /// The statement's text exactly as written (without the separating semicolon).
    pub text: String,
    /// Upper-case leading keywords naming the statement, e.g. `SELECT`, `CREATE TABLE`, `INSERT`.
    pub kind: String,
    pub is_read: bool,
    /// Character offset of the statement in the whole request.
    pub offset: usize,
}

/// PRAGMAs and CALLs that only report.
const READ_PRAGMAS: [&str; 10] = [
    "table_info",
    "show_tables",
    "show_tables_expanded",
    "database_list",
    "database_size",
    "storage_info",
    "version",
    "platform",
    "show",
    "functions",
];

pub fn split_statements(sql: &str) -> Result<Vec<SqlStatement>, DomainError> {
    let dialect = DuckDbDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| DomainError::SqlSyntax {
            message: e.message.clone(),
            position: char_offset(sql, e.location.line, e.location.column),
        })?;
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut words: Vec<String> = Vec::new();
    let mut flush = |start: &mut Option<usize>, end: usize, words: &mut Vec<String>| {
        if let Some(s) = start.take() {
            let text: String = chars[s..end].iter().collect::<String>().trim_end().to_owned();
            out.push(classify(&text, std::mem::take(words), s));
        }
        words.clear();
    };
    for t in &tokens {
        let pos = char_offset(sql, t.span.start.line, t.span.start.column).unwrap_or(0) as usize;
        match &t.token {
            Token::SemiColon => flush(&mut start, pos, &mut words),
            Token::Whitespace(_) | Token::EOF => {}
            token => {
                start.get_or_insert(pos);
                if let Token::Word(w) = token {
                    if words.len() < 64 && w.quote_style.is_none() {
                        words.push(w.value.to_ascii_uppercase());
                    }
                } else if words.len() < 64 {
                    words.push(token.to_string());
                }
            }
        }
    }
    flush(&mut start, chars.len(), &mut words);
    if out.is_empty() {
        return Err(DomainError::EmptySql);
    }
    Ok(out)
}

fn classify(text: &str, words: Vec<String>, offset: usize) -> SqlStatement {
    let dialect = DuckDbDialect {};
    let parsed = Parser::new(&dialect)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_statement());
    let is_read = match &parsed {
        Ok(stmt) => statement_is_read(stmt),
        Err(_) => keywords_are_read(&words),
    };
    SqlStatement {
        text: text.to_owned(),
        kind: kind_name(&words),
        is_read,
        offset,
    }
}

fn statement_is_read(stmt: &Statement) -> bool {
    match stmt {
        Statement::Query(q) => set_expr_is_read(&q.body),
        Statement::Explain { analyze, statement, .. } => !analyze || statement_is_read(statement),
        Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowViews { .. } => true,
        Statement::Pragma { name, .. } => READ_PRAGMAS.contains(&name.to_string().to_ascii_lowercase().as_str()),
        _ => false,
    }
}

fn set_expr_is_read(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(s) => s.into.is_none(),
        SetExpr::Query(q) => set_expr_is_read(&q.body),
        SetExpr::SetOperation { left, right, .. } => set_expr_is_read(left) && set_expr_is_read(right),
        SetExpr::Values(_) | SetExpr::Table(_) => true,
        _ => false,
    }
}

/// For DuckDB syntax the parser does not know (`FROM t`, `SUMMARIZE`, `PIVOT`, ...).
fn keywords_are_read(words: &[String]) -> bool {
    let first = words.first().map(String::as_str).unwrap_or_default();
    match first {
        "SELECT" | "VALUES" | "TABLE" | "FROM" | "DESCRIBE" | "DESC" | "SHOW" | "SUMMARIZE" | "PIVOT" | "UNPIVOT"
        | "(" => !words.iter().any(|w| w == "INTO"),
        "WITH" => !words
            .iter()
            .any(|w| matches!(w.as_str(), "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "INTO")),
        "EXPLAIN" => words.get(1).map(String::as_str) != Some("ANALYZE") || keywords_are_read(&words[2..]),
        "PRAGMA" | "CALL" => words
            .get(1)
            .is_some_and(|w| READ_PRAGMAS.contains(&w.to_ascii_lowercase().as_str())),
        _ => false,
    }
}

fn kind_name(words: &[String]) -> String {
    let is_word = |w: &&String| w.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
    let first = words.first().map(String::as_str).unwrap_or("(");
    let take = match first {
        "CREATE" | "DROP" | "ALTER" => {
            // CREATE [OR REPLACE] [TEMP|TEMPORARY] [UNIQUE] TABLE|VIEW|...
            let skip = [
                "OR",
                "REPLACE",
                "TEMP",
                "TEMPORARY",
                "UNIQUE",
                "PERSISTENT",
                "IF",
                "NOT",
                "EXISTS",
            ];
            let object = words[1..].iter().find(|w| !skip.contains(&w.as_str()));
            return match object {
                Some(o) if is_word(&o) => format!("{first} {o}"),
                _ => first.to_owned(),
            };
        }
        "EXPLAIN" if words.get(1).map(String::as_str) == Some("ANALYZE") => 2,
        "(" => return "SELECT".to_owned(),
        _ => 1,
    };
    words
        .iter()
        .take(take)
        .filter(is_word)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

/// sqlparser reports 1-based line and column; convert to a 0-based character offset.
fn char_offset(sql: &str, line: u64, column: u64) -> Option<u64> {
    if line == 0 {
        return None;
    }
    let mut offset = 0u64;
    for (i, l) in sql.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            return Some(offset + column.saturating_sub(1));
        }
        offset += l.chars().count() as u64;
    }
    Some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> SqlStatement {
        let mut v = split_statements(sql).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    #[test]
    fn reads() {
        for sql in [
            "SELECT 1",
            "select * from t where x = ';'",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "FROM range(3)",
            "SUMMARIZE SELECT 1",
            "DESCRIBE t",
            "SHOW TABLES",
            "EXPLAIN SELECT 1",
            "VALUES (1), (2)",
            "(SELECT 1) UNION ALL (SELECT 2)",
            "PRAGMA table_info('t')",
            "-- leading comment\nSELECT 2",
            "PIVOT t ON k USING sum(v)",
        ] {
            assert!(one(sql).is_read, "{sql} should be a read");
        }
    }

    #[test]
    fn writes_with_their_kind() {
        for (sql, kind) in [
            ("INSERT INTO t VALUES (1)", "INSERT"),
            ("create or replace table t as select 1", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("DROP TABLE IF EXISTS t", "DROP TABLE"),
            ("UPDATE t SET x = 1", "UPDATE"),
            ("DELETE FROM t", "DELETE"),
            ("COPY t TO 'x.csv'", "COPY"),
            ("ATTACH 'x.db' AS x", "ATTACH"),
            ("INSTALL httpfs", "INSTALL"),
            ("SET threads = 1", "SET"),
            ("WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", "WITH"),
            ("SELECT 1 INTO t2", "SELECT"),
            ("EXPLAIN ANALYZE INSERT INTO t VALUES (1)", "EXPLAIN ANALYZE"),
            ("CALL dbgen(sf = 1)", "CALL"),
            ("PRAGMA enable_profiling", "PRAGMA"),
            ("CHECKPOINT", "CHECKPOINT"),
        ] {
            let s = one(sql);
            assert!(!s.is_read, "{sql} should be a write");
            assert_eq!(s.kind, kind, "{sql}");
        }
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let v = split_statements("select ';' as a; -- c;\n create table t(x int);\n\n select 3;;").unwrap();
        let texts: Vec<&str> = v.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, vec!["select ';' as a", "create table t(x int)", "select 3"]);
        assert_eq!(v[1].offset, 24);
        assert!(v[0].is_read && !v[1].is_read && v[2].is_read);
    }

    #[test]
    fn empty_and_unterminated_input() {
        assert_eq!(split_statements("  -- nothing\n ;"), Err(DomainError::EmptySql));
        assert!(matches!(
            split_statements("select 'oops"),
            Err(DomainError::SqlSyntax { .. })
        ));
    }
}
