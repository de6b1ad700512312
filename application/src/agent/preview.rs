//! A result as the agent and its clients see it: columns, a few rows, and what the model may read of it.

use arrow_array::RecordBatch;
use futures::StreamExt;

use crate::ports::ResultPage;
use crate::AppError;

/// The first rows of a result, for the user (always) and the model (unless privacy says otherwise).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preview {
    /// `(name, engine type)`.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows the query returned (at least `rows.len()`).
    pub row_count: u64,
    /// More rows exist than `row_count` says (the query was cut at its row limit).
    pub truncated: bool,
}

impl Preview {
    /// Reads a finished read's page: at most `keep` rows are kept.
    pub async fn read(
        page: ResultPage,
        columns: Vec<(String, String)>,
        truncated: bool,
        keep: usize,
    ) -> Result<Self, AppError> {
        let mut batches: Vec<RecordBatch> = Vec::new();
        let mut stream = page.batches;
        while let Some(batch) = stream.next().await {
            batches.push(batch?);
        }
        let mut writer = arrow_json::ArrayWriter::new(Vec::new());
        for b in &batches {
            writer
                .write(b)
                .map_err(|e| AppError::Invalid(format!("result preview: {e}")))?;
        }
        writer
            .finish()
            .map_err(|e| AppError::Invalid(format!("result preview: {e}")))?;
        let text = String::from_utf8_lossy(&writer.into_inner()).into_owned();
        let objects: Vec<serde_json::Map<String, serde_json::Value>> = if text.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&text).unwrap_or_default()
        };
        let rows = objects
            .into_iter()
            .take(keep)
            .map(|o| {
                columns
                    .iter()
                    .map(|(name, _)| o.get(name).cloned().unwrap_or(serde_json::Value::Null))
                    .collect()
            })
            .collect();
        Ok(Self {
            columns,
            rows,
            row_count: page.total_rows,
            truncated,
        })
    }

    /// What the model reads: the shape always; the rows only without privacy.
    pub fn for_model(&self, privacy: bool, max_rows: usize) -> String {
        let header = self
            .columns
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ");
        let count = if self.truncated {
            format!("{}+ rows (cut at the row limit)", self.row_count)
        } else {
            format!("{} rows", self.row_count)
        };
        if privacy {
            return format!("columns: {header}\n{count} (values withheld: privacy mode)");
        }
        let mut out = format!("columns: {header}\n{count}");
        for row in self.rows.iter().take(max_rows) {
            let cells: Vec<String> = row
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s.chars().take(80).collect(),
                    serde_json::Value::Null => "NULL".into(),
                    other => other.to_string(),
                })
                .collect();
            out.push('\n');
            out.push_str(&cells.join(" | "));
        }
        if self.rows.len() > max_rows {
            out.push_str(&format!(
                "\n... ({} more shown to the user)",
                self.rows.len() - max_rows
            ));
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "columns": self.columns.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "rows": self.rows,
            "row_count": self.row_count,
            "truncated": self.truncated,
        })
    }

    /// A chart that suits the result, when one does: a time column and numbers make a line, a category and a
    /// number a bar chart, one number a metric, two numbers a scatter plot.
    pub fn chart(&self) -> Option<serde_json::Value> {
        let is_num = |t: &str| {
            let t = t.to_ascii_uppercase();
            [
                "INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC", "HUGEINT", "BIGINT",
            ]
            .iter()
            .any(|k| t.contains(k))
        };
        let is_time = |t: &str| {
            let t = t.to_ascii_uppercase();
            t.starts_with("DATE") || t.starts_with("TIMESTAMP") || t == "TIME"
        };
        let numbers: Vec<&str> = self
            .columns
            .iter()
            .filter(|(_, t)| is_num(t))
            .map(|(n, _)| n.as_str())
            .collect();
        let times: Vec<&str> = self
            .columns
            .iter()
            .filter(|(_, t)| is_time(t))
            .map(|(n, _)| n.as_str())
            .collect();
        let texts: Vec<&str> = self
            .columns
            .iter()
            .filter(|(_, t)| !is_num(t) && !is_time(t))
            .map(|(n, _)| n.as_str())
            .collect();
        if self.row_count == 1 && self.columns.len() == 1 && numbers.len() == 1 {
            return Some(serde_json::json!({"type": "metric", "value": numbers[0]}));
        }
        if self.row_count < 2 || numbers.is_empty() {
            return None;
        }
        if let Some(x) = times.first() {
            let mut spec = serde_json::json!({"type": "line", "x": x, "y": numbers});
            if let Some(series) = texts.first() {
                spec["series"] = serde_json::json!(series);
            }
            return Some(spec);
        }
        if let Some(x) = texts.first() {
            if self.row_count <= 50 {
                return Some(serde_json::json!({"type": "bar", "x": x, "y": numbers}));
            }
            return None;
        }
        (numbers.len() >= 2).then(|| serde_json::json!({"type": "scatter", "x": numbers[0], "y": numbers[1]}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(cols: &[(&str, &str)], rows: u64) -> Preview {
        Preview {
            columns: cols.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
            rows: vec![vec![serde_json::json!("a"), serde_json::json!(1)]],
            row_count: rows,
            truncated: false,
        }
    }

    #[test]
    fn charts_follow_the_shape_of_the_result() {
        assert_eq!(
            preview(&[("month", "DATE"), ("revenue", "DOUBLE")], 12)
                .chart()
                .unwrap()["type"],
            "line"
        );
        assert_eq!(
            preview(&[("genre", "VARCHAR"), ("n", "BIGINT")], 10).chart().unwrap()["type"],
            "bar"
        );
        assert_eq!(preview(&[("n", "BIGINT")], 1).chart().unwrap()["type"], "metric");
        assert_eq!(
            preview(&[("a", "DOUBLE"), ("b", "DOUBLE")], 30).chart().unwrap()["type"],
            "scatter"
        );
        assert!(preview(&[("name", "VARCHAR")], 5).chart().is_none());
    }

    #[test]
    fn privacy_withholds_every_value() {
        let p = Preview {
            columns: vec![("name".into(), "VARCHAR".into())],
            rows: vec![vec![serde_json::json!("Secret Customer")]],
            row_count: 1,
            truncated: false,
        };
        assert!(!p.for_model(true, 10).contains("Secret"));
        assert!(p.for_model(false, 10).contains("Secret Customer"));
    }
}
