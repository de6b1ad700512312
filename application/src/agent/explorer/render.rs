//! The context handed to the model: compact DDL (what models read best), with keys, a few sampled values and
//! descriptions as comments, and the joins between the chosen tables.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::agent::catalog::{CatalogTable, TableKind, TableName};

/// Approximate token count of `text` for a BPE tokenizer (cl100k / o200k style), without shipping one: every run
/// of letters and digits costs one token per four characters (rounded up), every other visible character costs one
/// token, whitespace none. Identifier-heavy DDL splits finer than prose, so this errs towards counting too many,
/// the safe side for a budget. It is additive over pieces that end in whitespace, which the renderer relies on.
pub fn estimate_tokens(text: &str) -> usize {
    let mut tokens = 0usize;
    let mut run = 0usize;
    for c in text.chars() {
        if c.is_alphanumeric() {
            run += 1;
            continue;
        }
        tokens += run.div_ceil(4);
        run = 0;
        if !c.is_whitespace() {
            tokens += 1;
        }
    }
    tokens + run.div_ceil(4)
}

/// An identifier as SQL needs it: bare when it is a plain lowercase-or-mixed word, double-quoted otherwise.
pub(crate) fn ident(s: &str) -> Cow<'_, str> {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    }
}

pub(crate) fn qualified(name: &TableName) -> String {
    let mut out = String::new();
    if let Some(c) = &name.catalog {
        out.push_str(&ident(c));
        out.push('.');
    }
    out.push_str(&ident(&name.schema));
    out.push('.');
    out.push_str(&ident(&name.table));
    out
}

const MAX_VALUES: usize = 5;
const MAX_VALUE_CHARS: usize = 40;

fn clip(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((i, _)) => Cow::Owned(format!("{}...", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

/// `CREATE TABLE` text for `table` showing the columns in `columns` (indices, in table order) and a count of the
/// rest. Ends with a newline.
pub(crate) fn table_ddl(table: &CatalogTable, columns: &[u32], with_values: bool) -> String {
    let mut out = String::new();
    let verb = if table.kind == TableKind::View { "VIEW" } else { "TABLE" };
    let _ = write!(out, "CREATE {verb} {} (", qualified(&table.name));
    let mut notes: Vec<String> = Vec::new();
    if !matches!(table.kind, TableKind::Table | TableKind::View) {
        notes.push(table.kind.as_str().to_string());
    }
    if let Some(rows) = table.row_count {
        notes.push(format!("~{rows} rows"));
    }
    if let Some(d) = table.description.as_deref().filter(|d| !d.trim().is_empty()) {
        notes.push(clip(d.trim(), 200).replace('\n', " "));
    }
    if !notes.is_empty() {
        let _ = write!(out, " -- {}", notes.join("; "));
    }
    out.push('\n');
    let pk: Vec<&str> = table.primary_key().map(|c| c.name.as_str()).collect();
    let single_fk = |col: &str| {
        table
            .foreign_keys
            .iter()
            .find(|fk| fk.columns.len() == 1 && fk.columns[0].eq_ignore_ascii_case(col))
    };
    // (code, comment) per line; commas go between codes, comments after them.
    let mut lines: Vec<(String, String)> = Vec::new();
    for &c in columns {
        let Some(col) = table.columns.get(c as usize) else {
            continue;
        };
        let mut line = format!("  {} {}", ident(&col.name), col.data_type);
        if col.is_primary_key && pk.len() == 1 {
            line.push_str(" PRIMARY KEY");
        }
        if let Some(fk) = single_fk(&col.name) {
            let _ = write!(
                line,
                " REFERENCES {}({})",
                qualified(&fk.references),
                fk.referenced_columns
                    .iter()
                    .map(|c| ident(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut comment = Vec::new();
        if let Some(d) = col.description.as_deref().filter(|d| !d.trim().is_empty()) {
            comment.push(clip(d.trim(), 120).replace('\n', " "));
        }
        if with_values && !col.sample_values.is_empty() {
            let vals: Vec<String> = col
                .sample_values
                .iter()
                .take(MAX_VALUES)
                .map(|v| format!("'{}'", clip(v, MAX_VALUE_CHARS).replace('\n', " ").replace('\'', "''")))
                .collect();
            comment.push(format!("e.g. {}", vals.join(", ")));
        }
        lines.push((line, comment.join("; ")));
    }
    if pk.len() > 1 {
        let cols = pk.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
        lines.push((format!("  PRIMARY KEY ({cols})"), String::new()));
    }
    for fk in table.foreign_keys.iter().filter(|fk| fk.columns.len() > 1) {
        let line = format!(
            "  FOREIGN KEY ({}) REFERENCES {}({})",
            fk.columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", "),
            qualified(&fk.references),
            fk.referenced_columns
                .iter()
                .map(|c| ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        );
        lines.push((line, String::new()));
    }
    let hidden = table.columns.len().saturating_sub(columns.len());
    let last = lines.len();
    for (i, (code, comment)) in lines.iter().enumerate() {
        out.push_str(code);
        if i + 1 < last {
            out.push(',');
        }
        if !comment.is_empty() {
            out.push_str(" -- ");
            out.push_str(comment);
        }
        out.push('\n');
    }
    if hidden > 0 {
        let _ = writeln!(out, "  -- {hidden} more columns");
    }
    out.push_str(");\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::catalog::{CatalogColumn, ForeignKey};

    #[test]
    fn tokens_count_word_pieces_and_punctuation() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("   \n"), 0);
        assert_eq!(estimate_tokens("id"), 1);
        assert_eq!(estimate_tokens("customer_id"), 4); // custo|mer + _ + id
        assert_eq!(estimate_tokens("a b\n"), estimate_tokens("a ") + estimate_tokens("b\n"));
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(ident("singer_id"), "singer_id");
        assert_eq!(ident("Home Town"), "\"Home Town\"");
        assert_eq!(ident("2nd"), "\"2nd\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn ddl_shows_keys_values_and_hidden_columns() {
        let t = CatalogTable::new(TableName::new("shop", "orders"), TableKind::CachedTable)
            .describe("One row per order")
            .rows(10)
            .column(CatalogColumn::new("id", "INTEGER").primary_key())
            .column(CatalogColumn::new("customer_id", "INTEGER"))
            .column(CatalogColumn::new("status", "VARCHAR").values(["paid", "shipped"]))
            .column(CatalogColumn::new("note", "VARCHAR"))
            .foreign_key(ForeignKey::new(
                "customer_id",
                TableName::new("shop", "customers"),
                "id",
            ));
        let ddl = table_ddl(&t, &[0, 1, 2], true);
        assert_eq!(
            ddl,
            "CREATE TABLE shop.orders ( -- cached table; ~10 rows; One row per order\n  id INTEGER PRIMARY KEY,\n  \
             customer_id INTEGER REFERENCES shop.customers(id),\n  status VARCHAR -- e.g. 'paid', 'shipped'\n  \
             -- 1 more columns\n);\n"
        );
    }
}
