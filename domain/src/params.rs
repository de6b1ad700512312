//! Analysis parameters: `$name` placeholders turned into positional parameters the engine binds, with the values
//! checked against the declared types. Values never become SQL text.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use sqlparser::ast::{visit_expressions_mut, CastKind, DataType, Expr, TimezoneInfo, Value, ValueWithSpan};
use sqlparser::tokenizer::Span;

use crate::{DomainError, ParamType, Parameter};

/// A value ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum BoundValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Text, and dates and timestamps as text the SQL casts.
    Text(String),
}

fn check(p: &Parameter, raw: &str) -> Result<BoundValue, DomainError> {
    let bad = |what: &str| DomainError::InvalidParameter(format!("{}: {raw:?} is not {what}", p.name));
    Ok(match p.ty {
        ParamType::String => BoundValue::Text(raw.to_owned()),
        ParamType::Integer => BoundValue::Int(raw.trim().parse().map_err(|_| bad("an integer"))?),
        ParamType::Float => BoundValue::Float(raw.trim().parse().map_err(|_| bad("a number"))?),
        ParamType::Boolean => BoundValue::Bool(match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(bad("a boolean")),
        }),
        ParamType::Date => {
            chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| bad("a date (YYYY-MM-DD)"))?;
            BoundValue::Text(raw.trim().to_owned())
        }
        ParamType::Timestamp => {
            let t = raw.trim();
            let ok = chrono::DateTime::parse_from_rfc3339(t).is_ok()
                || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").is_ok()
                || chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").is_ok();
            if !ok {
                return Err(bad("a timestamp (YYYY-MM-DD HH:MM:SS or RFC 3339)"));
            }
            BoundValue::Text(t.to_owned())
        }
    })
}

/// The values of `declared` from `given` (by name) or their defaults; a required one without a value, or an
/// undeclared name, is an error.
pub fn resolve_parameters(
    declared: &[Parameter],
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, BoundValue>, DomainError> {
    let mut out = BTreeMap::new();
    for p in declared {
        let value = match (given.get(p.name.as_str()), &p.default) {
            (Some(v), _) => check(p, v)?,
            (None, Some(d)) => check(p, d)?,
            (None, None) if p.required => {
                return Err(DomainError::InvalidParameter(format!(
                    "{} is required ({})",
                    p.name,
                    p.ty.as_str()
                )))
            }
            (None, None) => BoundValue::Null,
        };
        out.insert(p.name.to_string(), value);
    }
    Ok(out)
}

/// Rewrites `$name` to positional `$1, $2, ...` (dates and timestamps cast), returning the SQL and the values in
/// order. A placeholder that is not declared is an error; text inside string literals is never touched.
pub fn bind_parameters(
    sql: &str,
    declared: &[Parameter],
    values: &BTreeMap<String, BoundValue>,
) -> Result<(String, Vec<BoundValue>), DomainError> {
    crate::sql::with_ast(sql, |parsed| match parsed {
        Ok(statements) => bind_in(statements, declared, values),
        // DuckDB-only syntax the parser does not know runs as written when it has nothing to bind.
        Err(_) if !crate::sql::has_named_placeholders(sql) => Ok((sql.to_owned(), Vec::new())),
        Err(e) => Err(DomainError::SqlSyntax {
            message: format!("parameters can only be bound in SQL the parser understands: {e}"),
            position: None,
        }),
    })?
}

fn bind_in(
    mut statements: Vec<sqlparser::ast::Statement>,
    declared: &[Parameter],
    values: &BTreeMap<String, BoundValue>,
) -> Result<(String, Vec<BoundValue>), DomainError> {
    let types: BTreeMap<&str, ParamType> = declared.iter().map(|p| (p.name.as_str(), p.ty)).collect();
    let mut order: Vec<String> = Vec::new();
    let mut unknown: Option<String> = None;
    let _ = visit_expressions_mut(&mut statements, |expr: &mut Expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(p),
            ..
        }) = expr
        {
            let Some(name) = p.strip_prefix('$').filter(|n| n.parse::<u32>().is_err()) else {
                return ControlFlow::Continue(());
            };
            let Some(ty) = types.get(name) else {
                unknown = Some(name.to_owned());
                return ControlFlow::Break(());
            };
            let index = match order.iter().position(|n| n == name) {
                Some(i) => i + 1,
                None => {
                    order.push(name.to_owned());
                    order.len()
                }
            };
            let placeholder = Expr::Value(ValueWithSpan {
                value: Value::Placeholder(format!("${index}")),
                span: Span::empty(),
            });
            *expr = match ty {
                ParamType::Date | ParamType::Timestamp => Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(placeholder),
                    data_type: if *ty == ParamType::Date {
                        DataType::Date
                    } else {
                        DataType::Timestamp(None, TimezoneInfo::None)
                    },
                    format: None,
                },
                _ => placeholder,
            };
        }
        ControlFlow::Continue(())
    });
    if let Some(name) = unknown {
        return Err(DomainError::InvalidParameter(format!(
            "${name} is used in the SQL but not declared as a parameter"
        )));
    }
    let bound = order
        .iter()
        .map(|n| values.get(n).cloned().unwrap_or(BoundValue::Null))
        .collect();
    let text = statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Ok((text, bound))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identifier;

    fn p(name: &str, ty: ParamType, default: Option<&str>, required: bool) -> Parameter {
        Parameter {
            name: Identifier::parse(name).unwrap(),
            ty,
            default: default.map(str::to_owned),
            required,
        }
    }

    #[test]
    fn placeholders_become_positional_and_literals_stay() {
        let declared = [
            p("since", ParamType::Date, Some("2024-01-01"), false),
            p("n", ParamType::Integer, None, true),
        ];
        let given: BTreeMap<_, _> = [("n".to_owned(), "5".to_owned())].into();
        let values = resolve_parameters(&declared, &given).unwrap();
        let (sql, bound) = bind_parameters(
            "SELECT '$since' AS s, x FROM t WHERE d >= $since AND k < $n AND j > $since",
            &declared,
            &values,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT '$since' AS s, x FROM t WHERE d >= CAST($1 AS DATE) AND k < $2 AND j > CAST($1 AS DATE)"
        );
        assert_eq!(bound, [BoundValue::Text("2024-01-01".into()), BoundValue::Int(5)]);
    }

    #[test]
    fn missing_wrong_and_undeclared_are_refused() {
        let declared = [p("n", ParamType::Integer, None, true)];
        assert!(resolve_parameters(&declared, &BTreeMap::new())
            .unwrap_err()
            .to_string()
            .contains("required"));
        let given: BTreeMap<_, _> = [("n".to_owned(), "five".to_owned())].into();
        assert!(resolve_parameters(&declared, &given).is_err());
        let e = bind_parameters("SELECT $other", &declared, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("$other"), "{e}");
        let d = [p("day", ParamType::Date, None, false)];
        let given: BTreeMap<_, _> = [("day".to_owned(), "2024-13-01".to_owned())].into();
        assert!(resolve_parameters(&d, &given).is_err());
    }
}
