//! JSON values for every type DuckDB produces: integers as numbers, decimals as exact strings, temporal types
//! as ISO 8601 strings, intervals as `{months, days, micros}`, blobs as base64, lists as arrays, structs as
//! objects, maps as objects (text keys) or `[{key, value}]`, non-finite floats as strings.

use std::io::Write;

use arrow::array::{
    Array, AsArray, BooleanArray, FixedSizeListArray, GenericListArray, MapArray, StructArray, UnionArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, IntervalUnit,
    SchemaRef, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use base64::Engine as _;
use pluto_duck_application::ports::BatchStream;

use super::{next_batch, JsonEnvelope};

const OPTS: FormatOptions<'static> = FormatOptions::new().with_display_error(true);

/// Dictionary columns become their values once per batch, so the per-value path never sees a dictionary.
fn plain(batch: &RecordBatch) -> std::io::Result<Vec<std::sync::Arc<dyn Array>>> {
    batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Dictionary(_, v) => cast(c, v).map_err(std::io::Error::other),
            _ => Ok(c.clone()),
        })
        .collect()
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

fn formatted(out: &mut Vec<u8>, a: &dyn Array, i: usize) {
    match ArrayFormatter::try_new(a, &OPTS) {
        Ok(f) => string(out, &f.value(i).to_string()),
        Err(_) => out.extend_from_slice(b"null"),
    }
}

fn list<O: arrow::array::OffsetSizeTrait>(out: &mut Vec<u8>, l: &GenericListArray<O>, i: usize) {
    let values = l.value(i);
    out.push(b'[');
    for j in 0..values.len() {
        if j > 0 {
            out.push(b',');
        }
        write_value(out, values.as_ref(), j);
    }
    out.push(b']');
}

/// Whether element `i` is null, looking through unions (whose nulls live in their children).
pub(super) fn is_null_at(a: &dyn Array, i: usize) -> bool {
    match a.data_type() {
        DataType::Union(_, _) => {
            let u: &UnionArray = a.as_union();
            u.child(u.type_id(i)).is_null(u.value_offset(i))
        }
        _ => a.is_null(i),
    }
}

/// Appends element `i` of `a` as JSON.
pub fn write_value(out: &mut Vec<u8>, a: &dyn Array, i: usize) {
    if a.is_null(i) {
        out.extend_from_slice(b"null");
        return;
    }
    macro_rules! num {
        ($t:ty) => {{
            let _ = write!(out, "{}", a.as_primitive::<$t>().value(i));
        }};
    }
    match a.data_type() {
        DataType::Null => out.extend_from_slice(b"null"),
        DataType::Boolean => {
            let b: &BooleanArray = a.as_boolean();
            out.extend_from_slice(if b.value(i) { b"true" } else { b"false" });
        }
        DataType::Int8 => num!(Int8Type),
        DataType::Int16 => num!(Int16Type),
        DataType::Int32 => num!(Int32Type),
        DataType::Int64 => num!(Int64Type),
        DataType::UInt8 => num!(UInt8Type),
        DataType::UInt16 => num!(UInt16Type),
        DataType::UInt32 => num!(UInt32Type),
        DataType::UInt64 => num!(UInt64Type),
        DataType::Float16 => float(out, f64::from(a.as_primitive::<Float16Type>().value(i))),
        DataType::Float32 => float(out, f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float(out, a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => string(out, a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => string(out, a.as_string::<i64>().value(i)),
        DataType::Utf8View => string(out, a.as_string_view().value(i)),
        DataType::Binary => blob(out, a.as_binary::<i32>().value(i)),
        DataType::LargeBinary => blob(out, a.as_binary::<i64>().value(i)),
        DataType::BinaryView => blob(out, a.as_binary_view().value(i)),
        DataType::FixedSizeBinary(_) => blob(out, a.as_fixed_size_binary().value(i)),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = a.as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>().value(i);
            let _ = write!(
                out,
                "{{\"months\":{},\"days\":{},\"micros\":{}}}",
                v.months,
                v.days,
                v.nanoseconds / 1000
            );
        }
        DataType::List(_) => list(out, a.as_list::<i32>(), i),
        DataType::LargeList(_) => list(out, a.as_list::<i64>(), i),
        DataType::FixedSizeList(_, _) => {
            let l: &FixedSizeListArray = a.as_fixed_size_list();
            let values = l.value(i);
            out.push(b'[');
            for j in 0..values.len() {
                if j > 0 {
                    out.push(b',');
                }
                write_value(out, values.as_ref(), j);
            }
            out.push(b']');
        }
        DataType::Struct(fields) => {
            let s: &StructArray = a.as_struct();
            out.push(b'{');
            for (k, f) in fields.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                string(out, f.name());
                out.push(b':');
                write_value(out, s.column(k).as_ref(), i);
            }
            out.push(b'}');
        }
        DataType::Map(_, _) => {
            let m: &MapArray = a.as_map();
            let entries = m.value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            let text_keys = matches!(
                keys.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            );
            out.push(if text_keys { b'{' } else { b'[' });
            for j in 0..entries.len() {
                if j > 0 {
                    out.push(b',');
                }
                if text_keys {
                    write_value(out, keys.as_ref(), j);
                    out.push(b':');
                    write_value(out, values.as_ref(), j);
                } else {
                    out.extend_from_slice(b"{\"key\":");
                    write_value(out, keys.as_ref(), j);
                    out.extend_from_slice(b",\"value\":");
                    write_value(out, values.as_ref(), j);
                    out.push(b'}');
                }
            }
            out.push(if text_keys { b'}' } else { b']' });
        }
        DataType::Union(_, _) => {
            let u: &UnionArray = a.as_union();
            let child = u.child(u.type_id(i));
            write_value(out, child.as_ref(), u.value_offset(i));
        }
        DataType::Decimal128(_, scale) => string(
            out,
            &decimal_text(
                a.as_primitive::<arrow::datatypes::Decimal128Type>()
                    .value(i)
                    .to_string(),
                *scale,
            ),
        ),
        DataType::Decimal256(_, scale) => string(
            out,
            &decimal_text(
                a.as_primitive::<arrow::datatypes::Decimal256Type>()
                    .value(i)
                    .to_string(),
                *scale,
            ),
        ),
        DataType::Dictionary(_, v) => match cast(&a.slice(i, 1), v) {
            Ok(values) => write_value(out, values.as_ref(), 0),
            Err(_) => out.extend_from_slice(b"null"),
        },
        // Decimals (exact text), dates, times, timestamps, durations.
        _ => formatted(out, a, i),
    }
}

/// Exact decimal text from the unscaled integer (Arrow's display caps digits at the declared precision, which
/// a 39-digit HUGEINT exceeds).
pub fn decimal_text(unscaled: String, scale: i8) -> String {
    let (neg, digits) = match unscaled.strip_prefix('-') {
        Some(d) => (true, d.to_owned()),
        None => (false, unscaled),
    };
    let sign = if neg { "-" } else { "" };
    if scale <= 0 {
        return format!("{sign}{digits}{}", "0".repeat(usize::from(scale.unsigned_abs())));
    }
    let scale = usize::from(scale.unsigned_abs());
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn blob(out: &mut Vec<u8>, bytes: &[u8]) {
    string(out, &base64::engine::general_purpose::STANDARD.encode(bytes));
}

/// `[[v, ...], ...]` for the rows of the batches, into `out`.
pub fn write_rows_json(batches: &[RecordBatch], out: &mut Vec<u8>) -> std::io::Result<()> {
    out.push(b'[');
    let mut first = true;
    for batch in batches {
        let cols = plain(batch)?;
        for r in 0..batch.num_rows() {
            if !first {
                out.push(b',');
            }
            first = false;
            row_array(out, &cols, r);
        }
    }
    out.push(b']');
    Ok(())
}

fn row_array(out: &mut Vec<u8>, cols: &[std::sync::Arc<dyn Array>], r: usize) {
    out.push(b'[');
    for (c, col) in cols.iter().enumerate() {
        if c > 0 {
            out.push(b',');
        }
        write_value(out, col.as_ref(), r);
    }
    out.push(b']');
}

/// `{"run_id", "columns": [{name, type}], "rows": [[...]], "row_count", "total_rows", "offset", "truncated"}`,
/// streamed.
pub(super) fn write_document(
    schema: &SchemaRef,
    batches: &mut BatchStream,
    env: &JsonEnvelope,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(b"{\"run_id\":");
    string(&mut buf, &env.run_id);
    buf.extend_from_slice(b",\"columns\":[");
    for (k, f) in schema.fields().iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"name\":");
        string(&mut buf, f.name());
        buf.extend_from_slice(b",\"type\":");
        string(
            &mut buf,
            env.column_types.get(k).map(String::as_str).unwrap_or_default(),
        );
        buf.push(b'}');
    }
    buf.extend_from_slice(b"],\"rows\":[");
    let mut count = 0u64;
    while let Some(batch) = next_batch(batches) {
        let batch = batch?;
        let cols = plain(&batch)?;
        for r in 0..batch.num_rows() {
            if count > 0 {
                buf.push(b',');
            }
            row_array(&mut buf, &cols, r);
            count += 1;
            if buf.len() >= 64 * 1024 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    let _ = write!(
        buf,
        "],\"row_count\":{count},\"total_rows\":{},\"offset\":{},\"truncated\":{}}}",
        env.total_rows, env.offset, env.truncated
    );
    out.write_all(&buf)
}

/// One object per line, keyed by column name.
pub(super) fn write_ndjson(schema: &SchemaRef, batches: &mut BatchStream, out: &mut impl Write) -> std::io::Result<()> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for f in schema.fields() {
        let mut k = Vec::new();
        string(&mut k, f.name());
        k.push(b':');
        keys.push(k);
    }
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(batch) = next_batch(batches) {
        let batch = batch?;
        let cols = plain(&batch)?;
        for r in 0..batch.num_rows() {
            buf.push(b'{');
            for (c, col) in cols.iter().enumerate() {
                if c > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(&keys[c]);
                write_value(&mut buf, col.as_ref(), r);
            }
            buf.extend_from_slice(b"}\n");
            if buf.len() >= 64 * 1024 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::decimal_text;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal_text("12345".into(), 2), "123.45");
        assert_eq!(decimal_text("-5".into(), 3), "-0.005");
        assert_eq!(
            decimal_text("170141183460469231731687303715884105727".into(), 0),
            "170141183460469231731687303715884105727"
        );
        assert_eq!(decimal_text("7".into(), -2), "700");
    }
}
