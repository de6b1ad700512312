//! The context handed to the model: compact DDL (what models read best), with keys, a few sampled values and
//! descriptions as comments, and the joins between the chosen tables.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::agent::catalog::{CatalogTable, TableKind, TableName};

/// Approximate token count of `text` for the BPE tokenizers of current models (OpenAI's o200k / cl100k and their
/// like), without shipping one. It follows their pre-tokenisation: a word (a run of letters, cut where a lower-case
/// letter meets an upper-case one) costs one token per five ASCII letters (rounded up) plus one per other letter; a run of digits one per three digits; a single punctuation
/// character before a letter (`_id`, `.name`) joins that word; other punctuation costs one token per two
/// characters and takes the line breaks after it along; a line break elsewhere costs one, a run of two spaces or
/// more one, a single space nothing. On the contexts of the Spider benchmark (`tests/benches/explorer.rs` prints
/// the ratio) it counts about a quarter more than o200k and cl100k do, and never fewer: rare abbreviations and
/// upper-case names split finer than a fixed rate, so a tighter rate undercounts some contexts.
pub fn estimate_tokens(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_alphabetic() {
            // A word: a new piece starts where a lower-case letter meets an upper-case one (`PetID`).
            let (mut ascii, mut other) = (0usize, 0usize);
            while i < chars.len() && chars[i].is_alphabetic() {
                if i > start && chars[i].is_uppercase() && chars[i - 1].is_lowercase() {
                    tokens += ascii.div_ceil(5);
                    ascii = 0;
                }
                if chars[i].is_ascii() {
                    ascii += 1;
                } else {
                    other += 1;
                }
                i += 1;
            }
            tokens += ascii.div_ceil(5) + other;
        } else if c.is_numeric() {
            while i < chars.len() && chars[i].is_numeric() {
                i += 1;
            }
            tokens += (i - start).div_ceil(3);
        } else if c == '\n' || c == '\r' {
            while i < chars.len() && (chars[i] == '\n' || chars[i] == '\r') {
                i += 1;
            }
            tokens += 1;
        } else if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            tokens += usize::from(i - start > 1);
        } else {
            while i < chars.len() && !chars[i].is_alphanumeric() && !chars[i].is_whitespace() {
                i += 1;
            }
            let len = i - start;
            if len == 1 && i < chars.len() && chars[i].is_alphabetic() {
                continue;
            }
            tokens += len.div_ceil(2);
            while i < chars.len() && (chars[i] == '\n' || chars[i] == '\r') {
                i += 1;
            }
        }
    }
    tokens
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
        assert_eq!(estimate_tokens("id"), 1);
        assert_eq!(estimate_tokens("customer_id"), 3); // custo|mer + _id
        assert_eq!(estimate_tokens("description"), 3);
        assert_eq!(estimate_tokens("PetID"), 2);
        assert_eq!(estimate_tokens("2024-01-31"), 6); // 202|4 + - + 01 + - + 31
        assert_eq!(estimate_tokens("a, -- b\n"), 5); // a + , + -- + b + \n
        assert_eq!(estimate_tokens("x);\n  y"), 4); // x + );\n + two spaces + y
        assert_eq!(estimate_tokens("東京"), 2);
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
