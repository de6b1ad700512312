//! Quoting for the SQL this adapter writes itself.

pub(crate) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub(crate) fn relation(r: &pluto_duck_domain::Relation) -> String {
    format!("{}.{}", ident(r.schema.as_str()), ident(r.name.as_str()))
}
