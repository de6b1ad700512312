//! Execution accuracy: whether a predicted query's result is the gold query's result, compared the way the Spider
//! (test-suite `exec_eval.result_eq`) and BIRD evaluators compare them.
//!
//! The rules, in order:
//!
//! 1. Two empty results match (Spider's rule; a shipped gold query never returns nothing, see `check`).
//! 2. The results must have the same number of columns and of rows. Column names are never compared: `SELECT
//!    count(*)` and `SELECT count(*) AS n` agree.
//! 3. Columns may be permuted: the prediction matches when some permutation of its columns makes its rows equal
//!    to the gold rows. As Spider does, candidates are narrowed first: a predicted column can stand for a gold
//!    column only when the two hold the same multiset of values; the permutations left are tried one by one
//!    (the identity first), at most [`MAX_PERMUTATIONS`] of them.
//! 4. Rows are a multiset: duplicates count, order does not, unless the gold SQL has a top-level `ORDER BY`
//!    ([`RowOrder::for_gold_sql`]); then row `i` must equal row `i`. An `ORDER BY` inside parentheses (a window,
//!    a subquery, `string_agg(x ORDER BY y)`) does not make the order matter.
//! 5. Values: NULL equals NULL; integers equal exactly; a float equals a number within a relative tolerance of
//!    [`RELATIVE_TOLERANCE`] or an absolute one of [`ABSOLUTE_TOLERANCE`] (so `2` equals `2.0` and `1.98`, a
//!    DECIMAL, equals `1.98` a DOUBLE); text (which includes dates and timestamps in their text form) equals
//!    exactly; booleans equal booleans only. Values of different kinds never match (`'1'` is not `1`).

use std::cmp::Ordering;
use std::fmt;

use super::value::{ResultSet, Value};

pub const RELATIVE_TOLERANCE: f64 = 1e-6;
pub const ABSOLUTE_TOLERANCE: f64 = 1e-9;
/// How many column permutations are tried before the prediction is judged wrong. Only results with many columns
/// holding the same values reach it.
pub const MAX_PERMUTATIONS: usize = 10_000;
/// Above this many rows, a result with floats whose sorted rows do not line up is judged without the slower
/// one-by-one matching (see `multiset_equal`).
const MAX_ROWS_FOR_MATCHING: usize = 20_000;

/// Whether row order takes part in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOrder {
    Ignored,
    Compared,
}

impl RowOrder {
    /// `Compared` when the gold query has a top-level ORDER BY.
    pub fn for_gold_sql(sql: &str) -> Self {
        if has_top_level_order_by(sql) {
            RowOrder::Compared
        } else {
            RowOrder::Ignored
        }
    }
}

/// The verdict on one pair of results.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// `column_map[i]` is the predicted column that matched gold column `i`.
    Match {
        column_map: Vec<usize>,
    },
    Mismatch(Mismatch),
}

impl Comparison {
    pub fn is_match(&self) -> bool {
        matches!(self, Comparison::Match { .. })
    }
}

/// Why a prediction does not match, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    ColumnCount {
        gold: usize,
        predicted: usize,
    },
    RowCount {
        gold: usize,
        predicted: usize,
    },
    /// No predicted column holds the values of this gold column (by position and name).
    Column {
        index: usize,
        name: String,
    },
    /// Every column has a counterpart, but no permutation makes the rows equal.
    Rows,
    /// The rows are right but in another order, and the gold query orders them.
    Order,
    /// Too many candidate permutations to try.
    TooManyPermutations,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::ColumnCount { gold, predicted } => {
                write!(f, "{predicted} columns where the gold result has {gold}")
            }
            Mismatch::RowCount { gold, predicted } => write!(f, "{predicted} rows where the gold result has {gold}"),
            Mismatch::Column { index, name } => {
                write!(f, "no column holds the values of gold column {} ({name})", index + 1)
            }
            Mismatch::Rows => f.write_str("the rows differ"),
            Mismatch::Order => f.write_str("the right rows in the wrong order (the gold query orders them)"),
            Mismatch::TooManyPermutations => {
                write!(f, "more than {MAX_PERMUTATIONS} column permutations to try")
            }
        }
    }
}

/// Compares a predicted result with the gold one (see the module's rules).
pub fn compare(gold: &ResultSet, predicted: &ResultSet, order: RowOrder) -> Comparison {
    let width = gold.column_count();
    if gold.rows.is_empty() && predicted.rows.is_empty() {
        return Comparison::Match {
            column_map: (0..width).collect(),
        };
    }
    if predicted.column_count() != width {
        return Comparison::Mismatch(Mismatch::ColumnCount {
            gold: width,
            predicted: predicted.column_count(),
        });
    }
    if predicted.rows.len() != gold.rows.len() {
        return Comparison::Mismatch(Mismatch::RowCount {
            gold: gold.rows.len(),
            predicted: predicted.rows.len(),
        });
    }

    // Candidates per gold column: predicted columns holding the same multiset of values, the same position first.
    let gold_cols = sorted_columns(gold, width);
    let pred_cols = sorted_columns(predicted, width);
    let mut candidates = Vec::with_capacity(width);
    for (i, g) in gold_cols.iter().enumerate() {
        let mut c: Vec<usize> = (0..width).filter(|&j| cells_equal(g, &pred_cols[j])).collect();
        if let Some(pos) = c.iter().position(|&j| j == i) {
            c.swap(0, pos);
        }
        if c.is_empty() {
            return Comparison::Mismatch(Mismatch::Column {
                index: i,
                name: gold.columns.get(i).cloned().unwrap_or_default(),
            });
        }
        candidates.push(c);
    }

    let mut search = Search {
        gold,
        predicted,
        order,
        candidates: &candidates,
        map: Vec::with_capacity(width),
        used: vec![false; width],
        tried: 0,
        rows_matched_unordered: false,
    };
    match search.run() {
        Some(column_map) => Comparison::Match { column_map },
        None if search.tried >= MAX_PERMUTATIONS => Comparison::Mismatch(Mismatch::TooManyPermutations),
        None if search.rows_matched_unordered => Comparison::Mismatch(Mismatch::Order),
        None => Comparison::Mismatch(Mismatch::Rows),
    }
}

/// Backtracking over the column permutations the candidates allow.
struct Search<'a> {
    gold: &'a ResultSet,
    predicted: &'a ResultSet,
    order: RowOrder,
    candidates: &'a [Vec<usize>],
    map: Vec<usize>,
    used: Vec<bool>,
    tried: usize,
    rows_matched_unordered: bool,
}

impl Search<'_> {
    fn run(&mut self) -> Option<Vec<usize>> {
        if self.tried >= MAX_PERMUTATIONS {
            return None;
        }
        let i = self.map.len();
        if i == self.candidates.len() {
            self.tried += 1;
            return self.rows_match().then(|| self.map.clone());
        }
        for &j in &self.candidates[i] {
            if self.used[j] {
                continue;
            }
            self.used[j] = true;
            self.map.push(j);
            let found = self.run();
            self.map.pop();
            self.used[j] = false;
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn rows_match(&mut self) -> bool {
        let permuted: Vec<Vec<Value>> = self
            .predicted
            .rows
            .iter()
            .map(|row| self.map.iter().map(|&j| row[j].clone()).collect())
            .collect();
        match self.order {
            RowOrder::Compared => {
                if self.gold.rows.iter().zip(&permuted).all(|(g, p)| cells_equal(g, p)) {
                    return true;
                }
                if !self.rows_matched_unordered && multiset_equal(&self.gold.rows, &permuted) {
                    self.rows_matched_unordered = true;
                }
                false
            }
            RowOrder::Ignored => multiset_equal(&self.gold.rows, &permuted),
        }
    }
}

/// Each column's values, sorted.
fn sorted_columns(rs: &ResultSet, width: usize) -> Vec<Vec<Value>> {
    (0..width)
        .map(|j| {
            let mut col: Vec<Value> = rs
                .rows
                .iter()
                .map(|r| r.get(j).cloned().unwrap_or(Value::Null))
                .collect();
            col.sort_by(canonical_cmp);
            col
        })
        .collect()
}

/// Two lists of rows hold the same rows as many times each. Sorted rows are compared pairwise; when that fails and
/// floats are involved (near-equal floats may sort apart), every gold row is matched to an unused equal row.
fn multiset_equal(a: &[Vec<Value>], b: &[Vec<Value>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut sa: Vec<&Vec<Value>> = a.iter().collect();
    let mut sb: Vec<&Vec<Value>> = b.iter().collect();
    sa.sort_by(|x, y| row_cmp(x, y));
    sb.sort_by(|x, y| row_cmp(x, y));
    if sa.iter().zip(&sb).all(|(x, y)| cells_equal(x, y)) {
        return true;
    }
    let has_floats = |rows: &[&Vec<Value>]| rows.iter().any(|r| r.iter().any(|v| matches!(v, Value::Float(_))));
    if a.len() > MAX_ROWS_FOR_MATCHING || !(has_floats(&sa) || has_floats(&sb)) {
        return false;
    }
    let mut used = vec![false; sb.len()];
    sa.iter()
        .all(|x| match (0..sb.len()).find(|&k| !used[k] && cells_equal(x, sb[k])) {
            Some(k) => {
                used[k] = true;
                true
            }
            None => false,
        })
}

fn cells_equal(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| values_equal(x, y))
}

/// Rule 5 of the module.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => floats_close(*x as f64, *y),
        (Value::Float(x), Value::Float(y)) => floats_close(*x, *y),
        (Value::Text(x), Value::Text(y)) => x == y,
        _ => false,
    }
}

fn floats_close(a: f64, b: f64) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    let diff = (a - b).abs();
    diff <= ABSOLUTE_TOLERANCE || diff <= RELATIVE_TOLERANCE * a.abs().max(b.abs())
}

/// A total order on values for sorting: NULL, booleans, numbers (by value; an integer before the float equal to it
/// as f64), text.
fn canonical_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::Text(_) => 3,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => (*x as f64).total_cmp(&(*y as f64)).then(x.cmp(y)),
        (Value::Int(x), Value::Float(y)) => (*x as f64).total_cmp(y).then(Ordering::Less),
        (Value::Float(x), Value::Int(y)) => x.total_cmp(&(*y as f64)).then(Ordering::Greater),
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn row_cmp(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| canonical_cmp(x, y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Whether `ORDER BY` appears outside every parenthesis, string, quoted name and comment of the statement.
pub fn has_top_level_order_by(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    let mut last_word_was_order = false;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == c {
                        if bytes.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                last_word_was_order = false;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'(' => {
                depth += 1;
                i += 1;
                last_word_was_order = false;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
                last_word_was_order = false;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80) {
                    i += 1;
                }
                let word = &sql[start..i];
                if depth == 0 && last_word_was_order && word.eq_ignore_ascii_case("by") {
                    return true;
                }
                last_word_was_order = depth == 0 && word.eq_ignore_ascii_case("order");
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                i += 1;
                last_word_was_order = false;
            }
        }
    }
    false
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
