//! Splitting a request into statements and classifying each as a read or a write. The lexer and parser are
//! sqlparser's (DuckDB dialect); DuckDB syntax the parser does not know falls back to the statement's leading
//! keywords, conservatively: anything not known to be a read counts as a write.
//!
//! Every parse goes through [`with_ast`], which bounds the stack a hostile input can take.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FromTable, ObjectName, ObjectNamePart, SetExpr, Statement, TableFactor, TableObject, Visit, Visitor,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::parser::{Parser, ParserError};
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

/// Text up to this size is parsed on the caller's stack (a 2 MiB tokio worker holds ~16,000 nested terms);
/// longer text on a thread with [`BIG_STACK`]; past [`MAX_AST_BYTES`] not at all.
const INLINE_PARSE_BYTES: usize = 8 * 1024;
const BIG_STACK: usize = 256 * 1024 * 1024;
pub(crate) const MAX_AST_BYTES: usize = 2 * 1024 * 1024;

/// Parses `sql` and hands the result to `f`, which also drops the AST: both recurse as deep as the input nests,
/// so a long text gets a thread with a large stack. Text too long to parse safely is an error.
pub(crate) fn with_ast<T: Send>(
    sql: &str,
    f: impl FnOnce(Result<Vec<Statement>, ParserError>) -> T + Send,
) -> Result<T, DomainError> {
    let parse = || f(Parser::parse_sql(&DuckDbDialect {}, sql));
    if sql.len() <= INLINE_PARSE_BYTES {
        return Ok(parse());
    }
    if sql.len() > MAX_AST_BYTES {
        return Err(DomainError::SqlTooLarge(MAX_AST_BYTES));
    }
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("sql-parse".into())
            .stack_size(BIG_STACK)
            .spawn_scoped(s, parse)
            .map_err(|e| DomainError::SqlSyntax {
                message: format!("cannot parse: {e}"),
                position: None,
            })?
            .join()
            .map_err(|_| DomainError::SqlSyntax {
                message: "the SQL could not be parsed".into(),
                position: None,
            })
    })
}

/// Like [`with_ast`] for one statement's parse result; `None` when it does not parse as one statement or the
/// text is too long to parse.
fn parse_one<T: Send>(sql: &str, f: impl Fn(Option<&Statement>) -> T + Send + Sync) -> T {
    let run = |parsed: Result<Vec<Statement>, ParserError>| match parsed {
        Ok(v) if v.len() == 1 => f(v.first()),
        _ => f(None),
    };
    match with_ast(sql, run) {
        Ok(t) => t,
        Err(_) => f(None),
    }
}

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
    let is_read = parse_one(text, |stmt| match stmt {
        Some(stmt) => statement_is_read(stmt),
        None => keywords_are_read(&words),
    });
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
        "FORCE" | "UPDATE"
            if words
                .get(1)
                .is_some_and(|w| matches!(w.as_str(), "INSTALL" | "EXTENSIONS")) =>
        {
            2
        }
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

/// Functions with side effects that a read must not call.
const SIDE_EFFECT_FUNCTIONS: [&str; 3] = ["nextval", "setval", "setseed"];

/// Whether `stmt` calls a function with side effects (`nextval`): such a "read" is refused where only reads
/// are allowed.
pub fn calls_side_effects(stmt: &SqlStatement) -> Option<&'static str> {
    function_calls(&stmt.text)
        .into_iter()
        .find_map(|f| SIDE_EFFECT_FUNCTIONS.iter().find(|s| **s == f).copied())
}

/// Every `name(` in the text (lower case, quoted names included), from the tokens: nothing a parser may not know
/// hides a call from it.
pub(crate) fn function_calls(sql: &str) -> Vec<String> {
    let Ok(tokens) = Tokenizer::new(&DuckDbDialect {}, sql).tokenize() else {
        return Vec::new();
    };
    let significant: Vec<&Token> = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    significant
        .windows(2)
        .filter_map(|w| match (w[0], w[1]) {
            (Token::Word(word), Token::LParen) => Some(word.value.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Whether the text has a `$name` placeholder outside string literals.
pub(crate) fn has_named_placeholders(sql: &str) -> bool {
    Tokenizer::new(&DuckDbDialect {}, sql)
        .tokenize()
        .map(|tokens| {
            tokens.iter().any(|t| {
                matches!(t, Token::Placeholder(p) if p.strip_prefix('$').is_some_and(|n| n.parse::<u32>().is_err()))
            })
        })
        .unwrap_or(true)
}

/// A boolean SQL expression and nothing else (a cache filter, a row filter): `a > 1 AND b = 'x'` passes,
/// `a < 3) OR (1=1` and `1; DROP TABLE t` do not.
pub fn parse_condition(text: &str) -> Result<(), DomainError> {
    let bad = |why: String| DomainError::SqlSyntax {
        message: format!("a filter must be one SQL expression: {why}"),
        position: None,
    };
    if text.len() > INLINE_PARSE_BYTES {
        return Err(bad("too long".into()));
    }
    let mut parser = Parser::new(&DuckDbDialect {})
        .try_with_sql(text)
        .map_err(|e| bad(e.to_string()))?;
    let expr = parser.parse_expr().map_err(|e| bad(e.to_string()))?;
    if parser.peek_token().token != Token::EOF {
        return Err(bad(format!("unexpected text after {expr}")));
    }
    let mut subquery = false;
    let _ = sqlparser::ast::visit_expressions(&expr, |e: &Expr| {
        if matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }) {
            subquery = true;
        }
        ControlFlow::<()>::Continue(())
    });
    if subquery {
        return Err(bad("subqueries are not allowed in a filter".into()));
    }
    Ok(())
}

/// The relations a write statement changes (`INSERT INTO t`, `UPDATE s.t`, `CREATE TABLE t`, `DROP TABLE t`,
/// `COPY t FROM ...`), lower case as written; empty for reads and for statements whose targets cannot be told.
pub fn written_relations(stmt: &SqlStatement) -> Vec<String> {
    if stmt.is_read {
        return Vec::new();
    }
    parse_one(&stmt.text, |parsed| {
        let Some(s) = parsed else {
            return Vec::new();
        };
        let name = |n: &ObjectName| {
            n.0.iter()
                .map(|p| match p {
                    ObjectNamePart::Identifier(i) => i.value.to_ascii_lowercase(),
                    ObjectNamePart::Function(f) => f.name.value.to_ascii_lowercase(),
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        let factor = |f: &TableFactor| match f {
            TableFactor::Table { name: n, .. } => Some(name(n)),
            _ => None,
        };
        match s {
            Statement::Insert(i) => match &i.table {
                TableObject::TableName(n) => vec![name(n)],
                _ => Vec::new(),
            },
            Statement::Update(u) => factor(&u.table.relation).into_iter().collect(),
            Statement::Delete(d) => {
                let tables = match &d.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
                };
                tables.iter().filter_map(|t| factor(&t.relation)).collect()
            }
            Statement::CreateTable(c) => vec![name(&c.name)],
            Statement::CreateView(v) => vec![name(&v.name)],
            Statement::Drop { names, .. } => names.iter().map(name).collect(),
            Statement::AlterTable(a) => vec![name(&a.name)],
            Statement::Truncate(t) => t.table_names.iter().map(|t| name(&t.name)).collect(),
            Statement::Merge(m) => factor(&m.table).into_iter().collect(),
            Statement::Copy {
                source: sqlparser::ast::CopySource::Table { table_name, .. },
                to: false,
                ..
            } => vec![name(table_name)],
            _ => Vec::new(),
        }
    })
}

/// Table names a statement reads or writes (`FROM x`, `JOIN s.y`), in order, lower case as written; from the
/// AST when it parses, else nothing.
pub fn referenced_relations(sql: &str) -> Vec<String> {
    struct Names(Vec<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
            let n = relation
                .0
                .iter()
                .map(|p| match p {
                    ObjectNamePart::Identifier(i) => i.value.to_ascii_lowercase(),
                    ObjectNamePart::Function(f) => f.name.value.to_ascii_lowercase(),
                })
                .collect::<Vec<_>>()
                .join(".");
            if !self.0.contains(&n) {
                self.0.push(n);
            }
            ControlFlow::Continue(())
        }
    }
    with_ast(sql, |parsed| {
        let mut names = Names(Vec::new());
        if let Ok(statements) = parsed {
            let _ = statements.visit(&mut names);
        }
        names.0
    })
    .unwrap_or_default()
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
            ("FORCE INSTALL httpfs", "FORCE INSTALL"),
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

    #[test]
    fn deep_expressions_do_not_overflow_the_stack() {
        // 40,000 terms overflowed a 2 MiB stack when the AST was dropped; run on one to prove it holds.
        let sql = format!("SELECT 1{}", "+1".repeat(40_000));
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let s = split_statements(&sql).unwrap();
                (s.len(), s[0].is_read)
            })
            .unwrap();
        assert_eq!(handle.join().unwrap(), (1, true));
        let nested = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || split_statements(&nested).map(|s| s.len()))
            .unwrap();
        assert!(handle.join().is_ok());
    }

    #[test]
    fn side_effect_functions_are_found_even_quoted() {
        assert_eq!(calls_side_effects(&one("SELECT nextval('s')")), Some("nextval"));
        assert_eq!(calls_side_effects(&one("SELECT \"NEXTVAL\"('s')")), Some("nextval"));
        assert_eq!(calls_side_effects(&one("SELECT 'nextval(' AS x")), None);
        assert_eq!(calls_side_effects(&one("SELECT currval('s')")), None);
    }

    #[test]
    fn conditions_are_one_expression() {
        assert!(parse_condition("amount > 10 AND region = 'eu'").is_ok());
        assert!(parse_condition("x IN (1, 2)").is_ok());
        for bad in [
            "id < 3) OR (1=1",
            "1=1; DROP TABLE t",
            "x > 1 LIMIT 5",
            "",
            "x IN (SELECT 1)",
        ] {
            assert!(parse_condition(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn written_relations_of_writes() {
        for (sql, expected) in [
            ("INSERT INTO main.Orders VALUES (1)", vec!["main.orders"]),
            ("UPDATE t SET x = 1", vec!["t"]),
            ("DELETE FROM s.t WHERE x", vec!["s.t"]),
            ("CREATE TABLE n AS SELECT 1", vec!["n"]),
            ("DROP TABLE a, b", vec!["a", "b"]),
            ("ALTER TABLE t ADD COLUMN y INT", vec!["t"]),
            ("SELECT * FROM t", vec![]),
        ] {
            assert_eq!(written_relations(&one(sql)), expected, "{sql}");
        }
    }
}
