//! Column profiles in one pass over a stored result: nulls, a HyperLogLog distinct estimate, min and max
//! (for orderable types), and the most frequent values of text columns (space-saving sketch).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek};

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::{cast, concat, sort_to_indices, take, SortOptions};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::FileReader;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_row::{RowConverter, SortField};
use pluto_duck_application::ports::ColumnProfile;

const HLL_BITS: u32 = 12;
const TOP_CAPACITY: usize = 256;
const TOP_SHOWN: usize = 10;

struct Hll {
    registers: Vec<u8>,
}

impl Hll {
    fn new() -> Self {
        Self {
            registers: vec![0; 1 << HLL_BITS],
        }
    }

    fn add(&mut self, hash: u64) {
        let idx = (hash >> (64 - HLL_BITS)) as usize;
        let rest = (hash << HLL_BITS) | (1 << (HLL_BITS - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if rank > self.registers[idx] {
            self.registers[idx] = rank;
        }
    }

    fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let sum: f64 = self.registers.iter().map(|r| 2f64.powi(-i32::from(*r))).sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let est = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln() // small-range correction
        } else {
            raw
        };
        est.round() as u64
    }
}

struct Col {
    name: String,
    data_type: DataType,
    count: u64,
    nulls: u64,
    hll: Hll,
    converter: Option<RowConverter>,
    min: Option<ArrayRef>,
    max: Option<ArrayRef>,
    orderable: bool,
    top: Option<HashMap<String, (u64, u64)>>, // value -> (count, overestimate)
}

fn extreme(current: &Option<ArrayRef>, batch: &ArrayRef, descending: bool) -> Result<Option<ArrayRef>, ArrowError> {
    let candidates = match current {
        Some(c) => concat(&[c.as_ref(), batch.as_ref()])?,
        None => batch.clone(),
    };
    let opts = SortOptions {
        descending,
        nulls_first: false,
    };
    let idx = sort_to_indices(&candidates, Some(opts), Some(1))?;
    let picked = take(&candidates, &idx, None)?;
    Ok((picked.null_count() == 0 && !picked.is_empty()).then_some(picked))
}

fn format_one(a: &ArrayRef) -> Option<String> {
    let f = ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default()).ok()?;
    Some(f.value(0).to_string())
}

pub(crate) fn profile<R: Read + Seek>(reader: FileReader<R>) -> Result<Vec<ColumnProfile>, ArrowError> {
    let schema = reader.schema();
    profile_batches(&schema, reader)
}

pub(crate) fn profile_batches(
    schema: &SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch, ArrowError>>,
) -> Result<Vec<ColumnProfile>, ArrowError> {
    let hasher = std::collections::hash_map::RandomState::new();
    let mut cols: Vec<Col> = schema
        .fields()
        .iter()
        .map(|f| {
            let dt = f.data_type().clone();
            Col {
                name: f.name().clone(),
                converter: RowConverter::new(vec![SortField::new(dt.clone())]).ok(),
                orderable: !dt.is_nested(),
                top: matches!(
                    dt,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _)
                )
                .then(HashMap::new),
                data_type: dt,
                count: 0,
                nulls: 0,
                hll: Hll::new(),
                min: None,
                max: None,
            }
        })
        .collect();
    for batch in batches {
        let batch = batch?;
        for (col, array) in cols.iter_mut().zip(batch.columns()) {
            col.count += array.len() as u64;
            col.nulls += array.null_count() as u64;
            if let Some(conv) = &col.converter {
                let rows = conv.convert_columns(std::slice::from_ref(array))?;
                for i in 0..array.len() {
                    if array.is_valid(i) {
                        let mut h = hasher.build_hasher();
                        h.write(rows.row(i).as_ref());
                        col.hll.add(h.finish());
                    }
                }
            }
            if col.orderable {
                match (extreme(&col.min, array, false), extreme(&col.max, array, true)) {
                    (Ok(min), Ok(max)) => {
                        col.min = min.or(col.min.take());
                        col.max = max.or(col.max.take());
                    }
                    _ => col.orderable = false, // a type the sort kernel does not order
                }
            }
            if let Some(top) = col.top.as_mut() {
                let text = cast(array, &DataType::Utf8)?;
                if let Some(text) = text.as_any().downcast_ref::<StringArray>() {
                    for v in text.iter().flatten() {
                        space_saving(top, v);
                    }
                }
            }
        }
    }
    Ok(cols
        .into_iter()
        .map(|c| {
            let mut top: Vec<(String, u64)> = c
                .top
                .unwrap_or_default()
                .into_iter()
                .map(|(v, (n, _))| (v, n))
                .collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(TOP_SHOWN);
            let distinct = c.hll.estimate().min(c.count - c.nulls);
            ColumnProfile {
                name: c.name,
                data_type: format!("{}", c.data_type),
                count: c.count,
                nulls: c.nulls,
                distinct_estimate: distinct,
                min: c.min.as_ref().and_then(format_one),
                max: c.max.as_ref().and_then(format_one),
                top_values: top,
            }
        })
        .collect())
}

/// Space-saving heavy hitters: exact while fewer than `TOP_CAPACITY` distinct values were seen.
fn space_saving(top: &mut HashMap<String, (u64, u64)>, v: &str) {
    if let Some(e) = top.get_mut(v) {
        e.0 += 1;
        return;
    }
    if top.len() < TOP_CAPACITY {
        top.insert(v.to_owned(), (1, 0));
        return;
    }
    let Some((victim, (n, _))) = top.iter().min_by_key(|(_, (n, _))| *n).map(|(k, v)| (k.clone(), *v)) else {
        return;
    };
    top.remove(&victim);
    top.insert(v.to_owned(), (n + 1, n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_is_close_on_large_and_exact_on_small_sets() {
        let hasher = std::collections::hash_map::RandomState::new();
        for n in [10u64, 1000, 100_000] {
            let mut h = Hll::new();
            for i in 0..n {
                let mut s = hasher.build_hasher();
                s.write_u64(i);
                h.add(s.finish());
            }
            let est = h.estimate() as f64;
            let err = (est - n as f64).abs() / n as f64;
            assert!(err < 0.05, "n={n} estimate={est}");
        }
    }

    #[test]
    fn space_saving_keeps_the_heavy_hitters() {
        let mut top = HashMap::new();
        for i in 0..10_000 {
            space_saving(
                &mut top,
                if i % 3 == 0 {
                    "hot"
                } else {
                    &*Box::leak(format!("v{i}").into_boxed_str())
                },
            );
        }
        let best = top.iter().max_by_key(|(_, (n, _))| *n).unwrap();
        assert_eq!(best.0, "hot");
    }
}
