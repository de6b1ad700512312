//! Analyses: saved SQL that builds on other analyses through `ref()`, with a materialization and typed
//! parameters. Dependencies come from parsing the SQL, never from pattern matching on its text.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use sqlparser::ast::{
    visit_relations_mut, FunctionArg, FunctionArgExpr, Ident, ObjectName, ObjectNamePart, Query, Statement,
    TableFactor, Visit, Visitor,
};
use sqlparser::dialect::DuckDbDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::sql::with_ast;

use crate::{DomainError, Identifier, ProjectId};

/// The schema qualifier by which SQL names another analysis: `analysis.other`.
pub const ANALYSIS_SCHEMA: &str = "analysis";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Materialization {
    View,
    /// Rebuilt aside and swapped in.
    Table,
    /// Each run inserts its rows.
    Append,
    /// Rows past the cursor are appended, or merged on the unique key.
    Incremental {
        unique_key: Vec<String>,
        cursor: Option<String>,
    },
    /// A Parquet file under the artifacts folder.
    Parquet,
    /// Inlined as a CTE into its dependents; never built.
    Ephemeral,
}

impl Materialization {
    /// By name; `unique_key` and `cursor` belong to `incremental` only.
    pub fn parse(name: &str, unique_key: Vec<String>, cursor: Option<String>) -> Result<Self, DomainError> {
        let m = match name {
            "view" => Materialization::View,
            "table" => Materialization::Table,
            "append" => Materialization::Append,
            "parquet" => Materialization::Parquet,
            "ephemeral" => Materialization::Ephemeral,
            "incremental" => return Ok(Materialization::Incremental { unique_key, cursor }),
            other => {
                return Err(DomainError::UnknownValue {
                    what: "materialization (view, table, append, incremental, parquet, ephemeral)",
                    value: other.to_owned(),
                })
            }
        };
        if !unique_key.is_empty() || cursor.is_some() {
            return Err(DomainError::InvalidAnalysis(
                "unique_key and cursor apply to incremental analyses only".into(),
            ));
        }
        Ok(m)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Materialization::View => "view",
            Materialization::Table => "table",
            Materialization::Append => "append",
            Materialization::Incremental { .. } => "incremental",
            Materialization::Parquet => "parquet",
            Materialization::Ephemeral => "ephemeral",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Float,
    Boolean,
    Date,
    Timestamp,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Float => "float",
            ParamType::Boolean => "boolean",
            ParamType::Date => "date",
            ParamType::Timestamp => "timestamp",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        [
            ParamType::String,
            ParamType::Integer,
            ParamType::Float,
            ParamType::Boolean,
            ParamType::Date,
            ParamType::Timestamp,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| DomainError::UnknownValue {
            what: "parameter type (string, integer, float, boolean, date, timestamp)",
            value: s.to_owned(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: Identifier,
    pub ty: ParamType,
    /// Text of the default value, checked against the type when the analysis is saved.
    pub default: Option<String>,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub id: Identifier,
    pub project: ProjectId,
    pub name: String,
    pub sql: String,
    pub description: String,
    pub tags: Vec<String>,
    pub materialization: Materialization,
    pub parameters: Vec<Parameter>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the metadata store keeps of an analysis between runs: the definition it last ran with and how that went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisState {
    pub id: Identifier,
    pub project: ProjectId,
    pub definition_hash: String,
    /// Hash of the parameter values the last run used (see `freshness::params_hash`).
    pub params_hash: Option<String>,
    pub last_run: Option<crate::RunId>,
    pub last_status: crate::RunStatus,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows: u64,
    pub error: Option<String>,
}

/// What an analysis reads, found by parsing its SQL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dependencies {
    /// Other analyses, by id.
    pub analyses: BTreeSet<Identifier>,
    /// Other relations: `source.schema.table`, `cache.orders`, `main.orders` (lineage inputs).
    pub relations: BTreeSet<String>,
    /// Files read by table functions (`read_csv('...')`, `read_parquet('...')`, or a quoted path).
    pub files: BTreeSet<String>,
}

/// `{{ ref('x') }}` (any spacing, either quote) becomes `analysis.x`, so the SQL parses as SQL.
pub fn expand_refs(sql: &str) -> Result<String, DomainError> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| DomainError::InvalidAnalysis("unclosed {{ in the SQL".into()))?;
        let inner = after[..end].trim();
        let arg = inner
            .strip_prefix("ref")
            .map(str::trim_start)
            .and_then(|s| s.strip_prefix('('))
            .and_then(|s| s.strip_suffix(')'))
            .map(str::trim)
            .ok_or_else(|| {
                DomainError::InvalidAnalysis(format!(
                    "unsupported template {{{{ {inner} }}}}: only ref('id') is allowed"
                ))
            })?;
        let id = arg
            .strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .or_else(|| arg.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            .ok_or_else(|| DomainError::InvalidAnalysis(format!("ref({arg}) needs a quoted id")))?;
        let id = Identifier::parse(id)?;
        out.push_str(ANALYSIS_SCHEMA);
        out.push('.');
        out.push_str(id.as_str());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            ObjectNamePart::Function(f) => f.name.value.clone(),
        })
        .collect()
}

#[derive(Default)]
struct Collector {
    ctes: BTreeSet<String>,
    deps: Dependencies,
}

fn string_arg(arg: &FunctionArg) -> Option<String> {
    let expr = match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => e,
        FunctionArg::Named {
            arg: FunctionArgExpr::Expr(e),
            ..
        } => e,
        _ => return None,
    };
    match expr {
        sqlparser::ast::Expr::Value(v) => match &v.value {
            sqlparser::ast::Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args, .. } = factor {
            let p = parts(name);
            if let Some(args) = args {
                // A table function: the files it reads are inputs.
                let reader = p.last().map(|s| s.to_ascii_lowercase()).unwrap_or_default();
                if reader.starts_with("read_") || reader.ends_with("_scan") {
                    self.deps.files.extend(args.args.iter().filter_map(string_arg));
                }
                return ControlFlow::Continue(());
            }
            match p.as_slice() {
                [one] if self.ctes.contains(&one.to_ascii_lowercase()) => {}
                // DuckDB reads a quoted path as a file: FROM 'data/orders.csv'.
                [one] if one.contains(['/', '.']) => {
                    self.deps.files.insert(one.clone());
                }
                [schema, id] if schema.eq_ignore_ascii_case(ANALYSIS_SCHEMA) => {
                    if let Ok(id) = Identifier::parse(id.clone()) {
                        self.deps.analyses.insert(id);
                    } else {
                        self.deps.relations.insert(p.join("."));
                    }
                }
                _ => {
                    self.deps.relations.insert(p.join("."));
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The analyses, relations and files `sql` reads. `sql` may use `{{ ref('x') }}` or `analysis.x`. DuckDB reads
/// the parser does not know (`PIVOT`, `SUMMARIZE`, `FROM t SELECT ...`) are read from their tokens instead.
pub fn dependencies(sql: &str) -> Result<Dependencies, DomainError> {
    let expanded = expand_refs(sql)?;
    with_ast(&expanded, |parsed| match parsed {
        Ok(statements) => {
            let mut collector = Collector::default();
            for s in &statements {
                let _ = s.visit(&mut collector);
            }
            Ok(collector.deps)
        }
        Err(e) => token_dependencies(&expanded).ok_or_else(|| DomainError::SqlSyntax {
            message: e.to_string(),
            position: None,
        }),
    })?
}

/// Dependencies of a DuckDB-only read, from its tokens: the dotted name after FROM, JOIN, PIVOT, UNPIVOT,
/// SUMMARIZE or DESCRIBE (a quoted string there is a file). `None` unless the statement reads.
fn token_dependencies(sql: &str) -> Option<Dependencies> {
    let statements = crate::split_statements(sql).ok()?;
    let [stmt] = statements.as_slice() else { return None };
    if !stmt.is_read {
        return None;
    }
    let tokens = Tokenizer::new(&DuckDbDialect {}, sql).tokenize().ok()?;
    let t: Vec<&Token> = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let mut deps = Dependencies::default();
    let mut ctes = BTreeSet::new();
    for (i, tok) in t.iter().enumerate() {
        let Token::Word(w) = tok else { continue };
        let kw = w.value.to_ascii_uppercase();
        if w.quote_style.is_none() && kw == "AS" {
            if let (Some(Token::Word(name)), Some(Token::LParen)) =
                (i.checked_sub(1).and_then(|j| t.get(j)), t.get(i + 1))
            {
                ctes.insert(name.value.to_ascii_lowercase());
            }
        }
        if w.quote_style.is_some()
            || !matches!(
                kw.as_str(),
                "FROM" | "JOIN" | "PIVOT" | "UNPIVOT" | "SUMMARIZE" | "DESCRIBE"
            )
        {
            continue;
        }
        match t.get(i + 1) {
            Some(Token::SingleQuotedString(f)) => {
                deps.files.insert(f.clone());
            }
            Some(Token::Word(_)) => {
                let mut name = Vec::new();
                let mut j = i + 1;
                while let Some(Token::Word(part)) = t.get(j) {
                    name.push(part.value.clone());
                    if t.get(j + 1) == Some(&&Token::Period) {
                        j += 2;
                    } else {
                        j += 1;
                        break;
                    }
                }
                if t.get(j) == Some(&&Token::LParen) || name.is_empty() {
                    continue; // a table function or a keyword (SUMMARIZE SELECT ...)
                }
                let upper = name[0].to_ascii_uppercase();
                if name.len() == 1 && matches!(upper.as_str(), "SELECT" | "WITH" | "VALUES" | "LATERAL") {
                    continue;
                }
                match name.as_slice() {
                    [one] if ctes.contains(&one.to_ascii_lowercase()) => {}
                    [schema, id] if schema.eq_ignore_ascii_case(ANALYSIS_SCHEMA) => match Identifier::parse(id.clone())
                    {
                        Ok(id) => {
                            deps.analyses.insert(id);
                        }
                        Err(_) => {
                            deps.relations.insert(name.join("."));
                        }
                    },
                    _ => {
                        deps.relations.insert(name.join("."));
                    }
                }
            }
            _ => {}
        }
    }
    Some(deps)
}

/// Where one output column of an analysis comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnLineage {
    pub column: String,
    /// `relation.column` for each input column the output is computed from; `relation.*` for a wildcard.
    pub from: Vec<String>,
}

fn relation_of_factor(factor: &TableFactor) -> Option<(String, Option<String>)> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => Some((
            parts(name).join("."),
            alias.as_ref().map(|a| a.name.value.to_ascii_lowercase()),
        )),
        _ => None,
    }
}

/// Column-level lineage of a plain `SELECT ... FROM ... JOIN ...` (refs expanded): each output column with the
/// input columns it reads. `None` when the query has a shape the parser cannot resolve (set operations, derived
/// tables, table functions) or a column it cannot place.
pub fn column_lineage(sql: &str) -> Result<Option<Vec<ColumnLineage>>, DomainError> {
    let expanded = expand_refs(sql)?;
    with_ast(&expanded, |parsed| match parsed {
        Ok(statements) => lineage_of(&statements),
        // DuckDB-only syntax: no column lineage rather than a guess.
        Err(_) => Ok(None),
    })?
}

fn lineage_of(statements: &[Statement]) -> Result<Option<Vec<ColumnLineage>>, DomainError> {
    use sqlparser::ast::{Expr as E, SelectItem, SetExpr};
    let [Statement::Query(query)] = statements else {
        return Ok(None);
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Ok(None);
    };
    if query.with.is_some() {
        return Ok(None);
    }
    // alias (or the relation's last name part) -> relation
    let mut relations: Vec<(String, String)> = Vec::new();
    for twj in &select.from {
        let factors = std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation));
        for f in factors {
            let Some((relation, alias)) = relation_of_factor(f) else {
                return Ok(None);
            };
            let key = alias.unwrap_or_else(|| relation.rsplit('.').next().unwrap_or(&relation).to_ascii_lowercase());
            relations.push((key, relation));
        }
    }
    let place = |qualifier: Option<&str>, column: &str| -> Option<String> {
        match qualifier {
            Some(q) => relations
                .iter()
                .find(|(k, r)| k == &q.to_ascii_lowercase() || r.eq_ignore_ascii_case(q))
                .map(|(_, r)| format!("{r}.{column}")),
            None if relations.len() == 1 => Some(format!("{}.{column}", relations[0].1)),
            None => None,
        }
    };
    let mut out = Vec::new();
    for item in &select.projection {
        let (expr, name) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            SelectItem::Wildcard(_) => {
                for (_, r) in &relations {
                    out.push(ColumnLineage {
                        column: "*".into(),
                        from: vec![format!("{r}.*")],
                    });
                }
                continue;
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let q = kind.to_string();
                let q = q.trim_end_matches(".*");
                match place(Some(q), "*") {
                    Some(f) => out.push(ColumnLineage {
                        column: "*".into(),
                        from: vec![f],
                    }),
                    None => return Ok(None),
                }
                continue;
            }
            SelectItem::ExprWithAliases { .. } => return Ok(None),
        };
        let mut from = BTreeSet::new();
        let mut unplaced = false;
        let _ = sqlparser::ast::visit_expressions(expr, |e: &E| {
            match e {
                E::Identifier(i) => match place(None, &i.value) {
                    Some(f) => {
                        from.insert(f);
                    }
                    None => unplaced = true,
                },
                E::CompoundIdentifier(idents) => {
                    let placed = idents.split_last().and_then(|(col, qual)| {
                        let q = qual.iter().map(|i| i.value.clone()).collect::<Vec<_>>().join(".");
                        place(Some(&q), &col.value)
                    });
                    match placed {
                        Some(f) => {
                            from.insert(f);
                        }
                        None => unplaced = true,
                    }
                }
                E::Subquery(_) | E::Exists { .. } | E::InSubquery { .. } => unplaced = true,
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        if unplaced {
            return Ok(None);
        }
        let column = name.unwrap_or_else(|| match expr {
            E::Identifier(i) => i.value.clone(),
            E::CompoundIdentifier(ids) => ids.last().map(|i| i.value.clone()).unwrap_or_default(),
            other => other.to_string(),
        });
        out.push(ColumnLineage {
            column,
            from: from.into_iter().collect(),
        });
    }
    Ok(Some(out))
}

/// The name an ephemeral analysis is inlined under.
fn ephemeral_name(id: &Identifier) -> String {
    format!("__pd_ephemeral_{id}")
}

/// The analysis's SELECT as the warehouse runs it: refs become `analysis.<id>` (the project's own database holds
/// the schema), and ephemeral analyses (id -> their compiled SQL) are inlined as CTEs.
pub fn compile_sql(
    sql: &str,
    ephemeral: &std::collections::BTreeMap<Identifier, String>,
) -> Result<String, DomainError> {
    let expanded = expand_refs(sql)?;
    with_ast(&expanded, |parsed| match parsed {
        Ok(statements) => inline_ephemerals(statements, ephemeral),
        // DuckDB-only reads (PIVOT, SUMMARIZE, ...) run as written; an ephemeral cannot be inlined into them.
        Err(e) => match token_dependencies(&expanded) {
            Some(deps) => match deps.analyses.iter().find(|a| ephemeral.contains_key(*a)) {
                Some(a) => Err(DomainError::InvalidAnalysis(format!(
                    "ephemeral {a} can only be read by SQL the parser understands (SELECT / WITH)"
                ))),
                None => Ok(expanded.trim().trim_end_matches(';').to_owned()),
            },
            None => Err(DomainError::SqlSyntax {
                message: e.to_string(),
                position: None,
            }),
        },
    })?
}

fn inline_ephemerals(
    mut statements: Vec<Statement>,
    ephemeral: &std::collections::BTreeMap<Identifier, String>,
) -> Result<String, DomainError> {
    let [Statement::Query(_)] = statements.as_slice() else {
        return Err(DomainError::InvalidAnalysis(
            "an analysis is one query (SELECT, WITH ... SELECT, VALUES)".into(),
        ));
    };
    let mut inlined = Vec::new();
    let _ = visit_relations_mut(&mut statements, |name: &mut ObjectName| {
        let p = parts(name);
        if let [first, id] = p.as_slice() {
            if first.eq_ignore_ascii_case(ANALYSIS_SCHEMA) {
                if let Some((id, body)) = Identifier::parse(id.clone())
                    .ok()
                    .and_then(|i| ephemeral.get_key_value(&i))
                {
                    if !inlined.iter().any(|(i, _): &(Identifier, String)| i == id) {
                        inlined.push((id.clone(), body.clone()));
                    }
                    *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(ephemeral_name(id)))]);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let body = statements[0].to_string();
    if inlined.is_empty() {
        return Ok(body);
    }
    let ctes: Vec<String> = inlined
        .iter()
        .map(|(id, sql)| format!("{} AS ({sql})", ephemeral_name(id)))
        .collect();
    Ok(format!("WITH {} SELECT * FROM ({body})", ctes.join(", ")))
}

impl Analysis {
    /// Changes when anything that shapes the result changes: SQL, materialization, parameters (FNV-1a, stable
    /// across builds).
    pub fn definition_hash(&self) -> String {
        let mut text = format!("{}\u{0}{}", self.sql.trim(), self.materialization.as_str());
        if let Materialization::Incremental { unique_key, cursor } = &self.materialization {
            text.push_str(&format!(
                "\u{0}{}\u{0}{}",
                unique_key.join(","),
                cursor.clone().unwrap_or_default()
            ));
        }
        for p in &self.parameters {
            text.push_str(&format!(
                "\u{0}{}:{}:{:?}:{}",
                p.name,
                p.ty.as_str(),
                p.default,
                p.required
            ));
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |m: String| DomainError::InvalidAnalysis(format!("{}: {m}", self.id));
        if self.sql.trim().is_empty() {
            return Err(bad("sql must not be empty".into()));
        }
        let mut seen = BTreeSet::new();
        for p in &self.parameters {
            if !seen.insert(p.name.clone()) {
                return Err(bad(format!("parameter {} is declared twice", p.name)));
            }
        }
        if let Materialization::Incremental { unique_key, cursor } = &self.materialization {
            if unique_key.is_empty() && cursor.is_none() {
                return Err(bad("incremental needs a unique_key, a cursor, or both".into()));
            }
        }
        let deps = dependencies(&self.sql)?;
        if deps.analyses.contains(&self.id) {
            return Err(bad("an analysis cannot ref itself".into()));
        }
        compile_sql(&self.sql, &Default::default())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(deps: &Dependencies) -> Vec<&str> {
        deps.analyses.iter().map(Identifier::as_str).collect()
    }

    #[test]
    fn refs_in_both_forms_and_inputs() {
        let sql = "WITH recent AS (SELECT * FROM {{ ref('orders_clean') }} WHERE d > now() - INTERVAL 7 DAY) \
                   SELECT r.*, c.name FROM recent r JOIN analysis.customers c USING (id) \
                   JOIN sales.public.regions g ON g.id = r.region \
                   JOIN cache.fx USING (currency) \
                   UNION ALL SELECT * FROM read_parquet('data/extra/*.parquet') \
                   UNION ALL SELECT * FROM 'data/more.csv'";
        let d = dependencies(sql).unwrap();
        assert_eq!(ids(&d), ["customers", "orders_clean"]);
        assert_eq!(
            d.relations.iter().cloned().collect::<Vec<_>>(),
            ["cache.fx", "sales.public.regions"]
        );
        assert_eq!(
            d.files.iter().cloned().collect::<Vec<_>>(),
            ["data/extra/*.parquet", "data/more.csv"]
        );
    }

    #[test]
    fn ctes_and_subqueries_are_not_dependencies() {
        let d = dependencies("WITH a AS (SELECT 1 AS x) SELECT * FROM a, (SELECT * FROM analysis.b) s").unwrap();
        assert_eq!(ids(&d), ["b"]);
        assert!(d.relations.is_empty());
    }

    #[test]
    fn ref_text_inside_a_string_is_not_a_ref() {
        let d = dependencies("SELECT 'analysis.x' AS label, '{{ not' AS y FROM analysis.real").unwrap_err();
        // `{{` in a literal is still refused: templates are only ref().
        assert!(d.to_string().contains("unclosed"), "{d}");
        let d = dependencies("SELECT 'analysis.x' AS label FROM analysis.real").unwrap();
        assert_eq!(ids(&d), ["real"]);
    }

    #[test]
    fn compile_expands_refs_and_inlines_ephemerals() {
        let eph: std::collections::BTreeMap<_, _> =
            [(Identifier::parse("e").unwrap(), "SELECT 1 AS x".to_owned())].into();
        let sql = compile_sql("SELECT * FROM {{ ref('a') }} JOIN analysis.e USING (x)", &eph).unwrap();
        assert_eq!(
            sql,
            "WITH __pd_ephemeral_e AS (SELECT 1 AS x) SELECT * FROM (SELECT * FROM analysis.a JOIN __pd_ephemeral_e USING(x))"
        );
        assert!(compile_sql("SELECT 1; SELECT 2", &Default::default()).is_err());
        assert!(compile_sql("DELETE FROM t", &Default::default()).is_err());
    }

    #[test]
    fn column_lineage_where_the_parser_can_place_columns() {
        let l = column_lineage(
            "SELECT o.id, o.amount * f.rate AS amount_eur, upper(c.name) AS name, f.* \
             FROM {{ ref('orders') }} o JOIN cache.fx f ON f.ccy = o.ccy JOIN sales.public.customers c USING (cid)",
        )
        .unwrap()
        .unwrap();
        let got: Vec<(String, Vec<String>)> = l.into_iter().map(|c| (c.column, c.from)).collect();
        assert_eq!(
            got,
            [
                ("id".to_owned(), vec!["analysis.orders.id".to_owned()]),
                (
                    "amount_eur".to_owned(),
                    vec!["analysis.orders.amount".to_owned(), "cache.fx.rate".to_owned()]
                ),
                ("name".to_owned(), vec!["sales.public.customers.name".to_owned()]),
                ("*".to_owned(), vec!["cache.fx.*".to_owned()]),
            ]
        );
        let single = column_lineage("SELECT id, v + 1 AS w FROM analysis.a")
            .unwrap()
            .unwrap();
        assert_eq!(single[1].from, ["analysis.a.v"]);
        // Shapes it cannot resolve say so instead of guessing.
        assert_eq!(column_lineage("SELECT id FROM a, b").unwrap(), None);
        assert_eq!(column_lineage("SELECT 1 AS x UNION SELECT 2").unwrap(), None);
        assert_eq!(column_lineage("SELECT * FROM read_csv('x.csv')").unwrap(), None);
    }

    #[test]
    fn bad_templates_are_named() {
        assert!(dependencies("SELECT * FROM {{ source('a') }}").is_err());
        assert!(dependencies("SELECT * FROM {{ ref(x) }}").is_err());
        assert!(dependencies("SELECT * FROM {{ ref('bad-id') }}").is_err());
        assert!(dependencies("SELEC * FROM t").is_err());
    }

    #[test]
    fn duckdb_only_reads_are_analyses_too() {
        let d = dependencies("PIVOT {{ ref('sales') }} ON region USING sum(amount)").unwrap();
        assert_eq!(ids(&d), ["sales"]);
        let d = dependencies("SUMMARIZE main.orders").unwrap();
        assert_eq!(d.relations.iter().cloned().collect::<Vec<_>>(), ["main.orders"]);
        let d = dependencies("SUMMARIZE SELECT * FROM analysis.a").unwrap();
        assert_eq!(ids(&d), ["a"]);
        assert_eq!(
            compile_sql("PIVOT analysis.s ON r USING sum(v)", &Default::default()).unwrap(),
            "PIVOT analysis.s ON r USING sum(v)"
        );
        let eph: std::collections::BTreeMap<_, _> = [(Identifier::parse("s").unwrap(), "SELECT 1".to_owned())].into();
        assert!(compile_sql("PIVOT analysis.s ON r USING sum(v)", &eph).is_err());
        assert!(dependencies("PIVOT t ON x USING sum(v); DROP TABLE t").is_err());
    }
}
