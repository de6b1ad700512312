//! Query results in the form the comparator reads: column names and rows of a few plain value kinds, converted
//! from the Arrow batches the warehouse streams.

use std::fmt;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Decimal256Type, Decimal32Type, Decimal64Type, Float16Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Schema};

use super::EvalError;

/// One cell of a result. Decimals become `Int` when their scale is zero and `Float` otherwise; dates, times,
/// timestamps, intervals, binary and nested values become their text form (see [`TEXT_FORMATS`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// A query's result: column names (reported, never compared) and rows in the order the engine returned them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// How temporal values are written as text: DuckDB's own forms (`2013-01-01`, `2013-01-01 05:00:00`,
/// fractional seconds only when there are some), so a date compares equal to the same date from any query.
pub const TEXT_FORMATS: FormatOptions<'static> = FormatOptions::new()
    .with_null("")
    .with_date_format(Some("%Y-%m-%d"))
    .with_datetime_format(Some("%Y-%m-%d %H:%M:%S%.f"))
    .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
    .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"))
    .with_time_format(Some("%H:%M:%S%.f"));

impl ResultSet {
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Self {
        Self { columns, rows }
    }

    /// Converts a whole result: the schema gives the column names (and the columns of an empty result).
    pub fn from_batches(schema: &Schema, batches: &[RecordBatch]) -> Result<Self, EvalError> {
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
        for batch in batches {
            if batch.num_columns() != columns.len() {
                return Err(EvalError::Result(format!(
                    "a batch has {} columns, the schema {}",
                    batch.num_columns(),
                    columns.len()
                )));
            }
            let cols = batch
                .columns()
                .iter()
                .map(column_values)
                .collect::<Result<Vec<_>, _>>()?;
            for r in 0..batch.num_rows() {
                rows.push(cols.iter().map(|c| c[r].clone()).collect());
            }
        }
        Ok(Self { columns, rows })
    }

    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// The number of columns: from the names, or from the rows when no names were given.
    pub fn column_count(&self) -> usize {
        if self.columns.is_empty() {
            self.rows.first().map_or(0, Vec::len)
        } else {
            self.columns.len()
        }
    }
}

/// Every value of one Arrow column.
pub fn column_values(array: &ArrayRef) -> Result<Vec<Value>, EvalError> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Int(i128::from(a.value(i)))
                });
            }
        }};
    }
    macro_rules! decimals {
        ($t:ty, $scale:expr) => {{
            let a = array.as_primitive::<$t>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    decimal(i128::from(a.value(i)), $scale)
                });
            }
        }};
    }
    match array.data_type() {
        DataType::Null => out.resize(n, Value::Null),
        DataType::Boolean => {
            let a = array.as_boolean();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Bool(a.value(i))
                });
            }
        }
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Float16 => {
            let a = array.as_primitive::<Float16Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Float(f64::from(a.value(i)))
                });
            }
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Float(f64::from(a.value(i)))
                });
            }
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Float(a.value(i))
                });
            }
        }
        DataType::Decimal32(_, s) => decimals!(Decimal32Type, *s),
        DataType::Decimal64(_, s) => decimals!(Decimal64Type, *s),
        DataType::Decimal128(_, s) => decimals!(Decimal128Type, *s),
        DataType::Decimal256(_, s) => {
            let scale = *s;
            let a = array.as_primitive::<Decimal256Type>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    let raw = a.value(i);
                    match raw.to_i128() {
                        Some(v) => decimal(v, scale),
                        None => {
                            Value::Float(raw.to_string().parse::<f64>().unwrap_or(f64::NAN) / 10f64.powi(scale.into()))
                        }
                    }
                });
            }
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Text(a.value(i).to_owned())
                });
            }
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Text(a.value(i).to_owned())
                });
            }
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Text(a.value(i).to_owned())
                });
            }
        }
        DataType::Dictionary(_, value_type) => {
            // ENUM columns: the dictionary's values, one per row.
            let plain = arrow_cast::cast(array, value_type).map_err(|e| EvalError::Result(e.to_string()))?;
            return column_values(&plain);
        }
        _ => {
            let formatter =
                ArrayFormatter::try_new(array.as_ref(), &TEXT_FORMATS).map_err(|e| EvalError::Result(e.to_string()))?;
            for i in 0..n {
                out.push(if array.is_null(i) {
                    Value::Null
                } else {
                    Value::Text(formatter.value(i).to_string())
                });
            }
        }
    }
    Ok(out)
}

/// A decimal's unscaled value and scale as an integer (scale <= 0, when it fits) or a float.
fn decimal(unscaled: i128, scale: i8) -> Value {
    if scale <= 0 {
        let factor = 10i128.checked_pow(u32::from(scale.unsigned_abs()));
        if let Some(v) = factor.and_then(|f| unscaled.checked_mul(f)) {
            return Value::Int(v);
        }
    }
    Value::Float(unscaled as f64 / 10f64.powi(i32::from(scale)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow_schema::{Field, TimeUnit};

    use super::*;

    #[test]
    fn arrow_columns_become_plain_values() {
        let schema = Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("d", DataType::Decimal128(10, 2), true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("big", DataType::Decimal128(38, 0), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(Float64Array::from(vec![Some(0.5), None])),
                Arc::new(
                    Decimal128Array::from(vec![Some(199), None])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                Arc::new(StringArray::from(vec![Some("a"), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(Date32Array::from(vec![Some(15706), None])),
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(1_356_998_400_000_000 + 5 * 3_600_000_000),
                    Some(1_356_998_400_000_000 + 1_500_000),
                ])),
                Arc::new(
                    Decimal128Array::from(vec![Some(i128::from(i64::MAX) * 4), None])
                        .with_precision_and_scale(38, 0)
                        .unwrap(),
                ),
            ],
        )
        .unwrap();
        let rs = ResultSet::from_batches(&schema, &[batch]).unwrap();
        assert_eq!(rs.columns, ["n", "x", "d", "s", "b", "day", "at", "big"]);
        assert_eq!(
            rs.rows[0],
            vec![
                Value::Int(1),
                Value::Float(0.5),
                Value::Float(1.99),
                Value::Text("a".into()),
                Value::Bool(true),
                Value::Text("2013-01-01".into()),
                Value::Text("2013-01-01 05:00:00".into()),
                Value::Int(i128::from(i64::MAX) * 4),
            ]
        );
        assert_eq!(rs.rows[1][6], Value::Text("2013-01-01 00:00:01.500".into()));
        assert!(rs.rows[1].iter().enumerate().all(|(i, v)| i == 6 || *v == Value::Null));
    }

    #[test]
    fn an_empty_result_keeps_its_columns() {
        let schema = Schema::new(vec![Field::new("a", DataType::Int32, true)]);
        let rs = ResultSet::from_batches(&schema, &[]).unwrap();
        assert_eq!((rs.column_count(), rs.row_count()), (1, 0));
    }
}
