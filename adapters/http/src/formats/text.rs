//! CSV (RFC 4180; nested values as JSON text, blobs as base64) and Parquet.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use pluto_duck_application::ports::BatchStream;

use super::json::{is_null_at, write_value};
use super::next_batch;

fn csv_field(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Types written as their JSON text in CSV (the display formatter has no faithful form for them, or caps
/// decimal digits at the declared precision).
fn as_json(t: &DataType) -> bool {
    t.is_nested()
        || matches!(
            t,
            DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
                | DataType::Interval(_)
                | DataType::Decimal128(_, _)
                | DataType::Decimal256(_, _)
                | DataType::Float16
                | DataType::Float32
                | DataType::Float64
        )
}

pub(super) fn write_csv(schema: &SchemaRef, batches: &mut BatchStream, out: &mut impl Write) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    for (k, f) in schema.fields().iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        csv_field(&mut buf, f.name());
    }
    buf.extend_from_slice(b"\r\n");
    let opts = FormatOptions::new().with_display_error(true);
    let mut cell = Vec::new();
    while let Some(batch) = next_batch(batches) {
        let batch = batch?;
        let cols: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Dictionary(_, v) => cast(c, v).map_err(std::io::Error::other),
                _ => Ok(c.clone()),
            })
            .collect::<Result<_, _>>()?;
        let formatters: Vec<Option<ArrayFormatter>> = cols
            .iter()
            .map(|c| {
                (!as_json(c.data_type()))
                    .then(|| ArrayFormatter::try_new(c.as_ref(), &opts).ok())
                    .flatten()
            })
            .collect();
        for r in 0..batch.num_rows() {
            for (c, col) in cols.iter().enumerate() {
                if c > 0 {
                    buf.push(b',');
                }
                if is_null_at(col.as_ref(), r) {
                    continue; // empty field
                }
                cell.clear();
                match &formatters[c] {
                    Some(f) => {
                        let _ = write!(cell, "{}", f.value(r));
                    }
                    None => {
                        write_value(&mut cell, col.as_ref(), r);
                        // A JSON string of a blob, float or interval is written without its quotes.
                        if !col.data_type().is_nested() && cell.first() == Some(&b'"') {
                            cell.remove(0);
                            cell.pop();
                        }
                    }
                }
                csv_field(&mut buf, &String::from_utf8_lossy(&cell));
            }
            buf.extend_from_slice(b"\r\n");
            if buf.len() >= 64 * 1024 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf)
}

/// Parquet cannot hold Arrow month-day-nano intervals or unions: those columns are written as text.
fn parquet_type(t: &DataType) -> DataType {
    match t {
        DataType::Interval(_) | DataType::Union(_, _) => DataType::Utf8,
        DataType::List(f) => DataType::List(Arc::new(parquet_field(f))),
        DataType::LargeList(f) => DataType::LargeList(Arc::new(parquet_field(f))),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(|f| parquet_field(f)).collect()),
        other => other.clone(),
    }
}

fn parquet_field(f: &Field) -> Field {
    f.clone().with_data_type(parquet_type(f.data_type()))
}

pub(super) fn write_parquet(
    schema: &SchemaRef,
    batches: &mut BatchStream,
    out: &mut (impl Write + Send),
) -> std::io::Result<()> {
    let target: SchemaRef = Arc::new(Schema::new_with_metadata(
        schema.fields().iter().map(|f| parquet_field(f)).collect::<Vec<_>>(),
        schema.metadata().clone(),
    ));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(64 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(out, target.clone(), Some(props)).map_err(std::io::Error::other)?;
    while let Some(batch) = next_batch(batches) {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .zip(target.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c.clone())
                } else {
                    to_text(c, f.data_type())
                }
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(target.clone(), columns).map_err(std::io::Error::other)?;
        writer.write(&batch).map_err(std::io::Error::other)?;
        // Bound the writer's buffer: flush each full row group.
        if writer.in_progress_size() > 64 << 20 {
            writer.flush().map_err(std::io::Error::other)?;
        }
    }
    writer.close().map_err(std::io::Error::other)?;
    Ok(())
}

fn to_text(c: &ArrayRef, target: &DataType) -> std::io::Result<ArrayRef> {
    if !matches!(c.data_type(), DataType::Union(_, _)) {
        if let Ok(v) = cast(c, target) {
            return Ok(v);
        }
    }
    // Fall back to the display form, value by value.
    let f = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::new()).map_err(std::io::Error::other)?;
    let values: arrow::array::StringArray = (0..c.len())
        .map(|i| (!is_null_at(c.as_ref(), i)).then(|| f.value(i).to_string()))
        .collect();
    Ok(Arc::new(values))
}
