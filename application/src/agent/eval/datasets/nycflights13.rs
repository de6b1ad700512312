//! nycflights13: every flight that departed New York City (EWR, JFK, LGA) in 2013, with airlines, airports,
//! planes and hourly weather, from the `nycflights13` package's CSV files (read in place; `NA` is NULL).
//!
//! Columns keep the package's names and gain types: counts, clock times (`dep_time` is `hhmm` as in the
//! package), delays and distances are `INTEGER`, measurements `DOUBLE`. `time_hour` is a `TIMESTAMP` of the
//! scheduled hour in New York local time, built from `year`, `month`, `day` and `hour` (the CSV holds the same
//! instant in UTC). Keys: `airlines.carrier`, `airports.faa`, `planes.tailnum`. Declared foreign keys are only
//! those the data keeps: `flights.carrier`, `flights.origin` and `weather.origin` (some `dest` airports and
//! most `tailnum`s have no row in `airports` / `planes`). `weather` has no key: the hour the clocks go back
//! (2013-11-03 01:00) appears twice per airport.

use std::path::Path;

use super::{required_file, ColumnPlan, CsvFile, CsvRead, DatasetPlan, ForeignKeyPlan, TablePlan};
use crate::agent::eval::EvalError;

pub(super) const NAME: &str = "nycflights13";

const LOCAL_HOUR: &str = "make_timestamp(\"year\", \"month\", \"day\", \"hour\", 0, 0)";

struct Spec {
    table: &'static str,
    /// (column, type, nullable)
    columns: &'static [(&'static str, &'static str, bool)],
    primary_key: &'static [&'static str],
    foreign_keys: &'static [(&'static str, &'static str, &'static str)],
}

const INT: &str = "INTEGER";
const DOUBLE: &str = "DOUBLE";
const TEXT: &str = "VARCHAR";
const TIME_HOUR: (&str, &str, bool) = ("time_hour", "TIMESTAMP", false);

const SPECS: [Spec; 5] = [
    Spec {
        table: "airlines",
        columns: &[("carrier", TEXT, false), ("name", TEXT, false)],
        primary_key: &["carrier"],
        foreign_keys: &[],
    },
    Spec {
        table: "airports",
        columns: &[
            ("faa", TEXT, false),
            ("name", TEXT, false),
            ("lat", DOUBLE, false),
            ("lon", DOUBLE, false),
            ("alt", INT, false),
            ("tz", INT, true),
            ("dst", TEXT, true),
            ("tzone", TEXT, true),
        ],
        primary_key: &["faa"],
        foreign_keys: &[],
    },
    Spec {
        table: "planes",
        columns: &[
            ("tailnum", TEXT, false),
            ("year", INT, true),
            ("type", TEXT, true),
            ("manufacturer", TEXT, true),
            ("model", TEXT, true),
            ("engines", INT, true),
            ("seats", INT, true),
            ("speed", INT, true),
            ("engine", TEXT, true),
        ],
        primary_key: &["tailnum"],
        foreign_keys: &[],
    },
    Spec {
        table: "weather",
        columns: &[
            ("origin", TEXT, false),
            ("year", INT, false),
            ("month", INT, false),
            ("day", INT, false),
            ("hour", INT, false),
            ("temp", DOUBLE, true),
            ("dewp", DOUBLE, true),
            ("humid", DOUBLE, true),
            ("wind_dir", INT, true),
            ("wind_speed", DOUBLE, true),
            ("wind_gust", DOUBLE, true),
            ("precip", DOUBLE, true),
            ("pressure", DOUBLE, true),
            ("visib", DOUBLE, true),
            TIME_HOUR,
        ],
        primary_key: &[],
        foreign_keys: &[("origin", "airports", "faa")],
    },
    Spec {
        table: "flights",
        columns: &[
            ("year", INT, false),
            ("month", INT, false),
            ("day", INT, false),
            ("dep_time", INT, true),
            ("sched_dep_time", INT, false),
            ("dep_delay", INT, true),
            ("arr_time", INT, true),
            ("sched_arr_time", INT, false),
            ("arr_delay", INT, true),
            ("carrier", TEXT, false),
            ("flight", INT, false),
            ("tailnum", TEXT, true),
            ("origin", TEXT, false),
            ("dest", TEXT, false),
            ("air_time", INT, true),
            ("distance", INT, false),
            ("hour", INT, false),
            ("minute", INT, false),
            TIME_HOUR,
        ],
        primary_key: &[],
        foreign_keys: &[("carrier", "airlines", "carrier"), ("origin", "airports", "faa")],
    },
];

pub(super) fn plan(dir: &Path) -> Result<DatasetPlan, EvalError> {
    let mut tables = Vec::with_capacity(SPECS.len());
    for spec in &SPECS {
        let path = required_file(NAME, dir.join(format!("{}.csv", spec.table)))?;
        let columns = spec
            .columns
            .iter()
            .map(|&(name, ty, nullable)| ColumnPlan {
                name: name.to_owned(),
                sql_type: ty.to_owned(),
                nullable,
                expr: (name == TIME_HOUR.0).then(|| LOCAL_HOUR.to_owned()),
            })
            .collect();
        // The file's columns are the table's, with `time_hour` read as text and left unused.
        let csv_columns = spec
            .columns
            .iter()
            .map(|&(name, ty, _)| {
                let read_as = if name == TIME_HOUR.0 { TEXT } else { ty };
                (name.to_owned(), read_as.to_owned())
            })
            .collect();
        tables.push(TablePlan {
            name: spec.table.to_owned(),
            columns,
            primary_key: spec.primary_key.iter().map(|c| (*c).to_owned()).collect(),
            foreign_keys: spec
                .foreign_keys
                .iter()
                .map(|(column, table, referenced)| ForeignKeyPlan {
                    column: (*column).to_owned(),
                    references: (*table).to_owned(),
                    referenced_column: (*referenced).to_owned(),
                })
                .collect(),
            csv: CsvRead {
                file: CsvFile::Dataset(path),
                columns: csv_columns,
                null: "NA".to_owned(),
            },
            rows: None,
        });
    }
    Ok(DatasetPlan {
        dataset: NAME.to_owned(),
        files: Vec::new(),
        tables,
    })
}
