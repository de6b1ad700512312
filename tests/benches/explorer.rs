//! Schema explorer benchmark on the Spider dev set: the 166 schemas side by side form one catalog of 876 tables;
//! for each of the 1,034 questions the explorer ranks tables with no knowledge of the question's database. Reports
//! the share of questions whose gold tables are all in the top 5 / top 10 / rendered context, the context size, and
//! time per question, for the catalog built from tables.json and for the same catalog created in DuckDB and read
//! back from duckdb_tables() / duckdb_columns() / duckdb_constraints() as the product reads it. A naive ranking that
//! counts shared words runs in the same process as the reference.
//!
//! Needs the dataset: `scripts/fetch-spider.sh`. Run with `cargo bench -p pluto-duck-tests --bench explorer`.
//! EXPLORER_BUDGET sets the token budget (default 2000); EXPLORER_MISSES=FILE writes the questions
//! whose gold tables are not all in the top 5.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: a failure should stop it loudly

mod spider;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use pluto_duck_application::agent::{
    Budget, CatalogColumn, CatalogSnapshot, CatalogTable, Explorer, ForeignKey, TableKind, TableName, Tuning,
};
use spider::{Question, Report, Schema};

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[derive(Default)]
struct Created {
    tables: usize,
    foreign_keys: usize,
    /// Spider foreign keys DuckDB refused: cycles (a table can only reference tables created before it) and
    /// type mismatches.
    refused: usize,
}

/// Creates every Spider schema as empty DuckDB tables: column types, primary keys, UNIQUE on columns other tables
/// reference, and the foreign keys DuckDB accepts.
fn create_in_duckdb(conn: &duckdb::Connection, schemas: &[Schema]) -> Created {
    let mut out = Created::default();
    for s in schemas {
        conn.execute_batch(&format!("CREATE SCHEMA {}", quote(&s.db_id)))
            .unwrap();
        let table_of = |c: usize| s.columns[c].0;
        let referenced: HashSet<usize> = s.foreign_keys.iter().map(|&(_, b)| b).collect();
        // Referenced tables first; tables in a cycle keep dataset order and lose the edge that closes it.
        let mut order = Vec::new();
        let mut placed = vec![false; s.tables.len()];
        while order.len() < s.tables.len() {
            let before = order.len();
            for t in 0..s.tables.len() {
                let ready = s
                    .foreign_keys
                    .iter()
                    .filter(|&&(a, b)| table_of(a) == t && table_of(b) != t)
                    .all(|&(_, b)| placed[table_of(b)]);
                if !placed[t] && ready {
                    placed[t] = true;
                    order.push(t);
                }
            }
            if order.len() == before {
                let t = (0..s.tables.len()).find(|&t| !placed[t]).unwrap();
                placed[t] = true;
                order.push(t);
            }
        }
        let mut created = vec![false; s.tables.len()];
        for t in order {
            let cols: Vec<usize> = (1..s.columns.len()).filter(|&c| table_of(c) == t).collect();
            let mut parts: Vec<String> = cols
                .iter()
                .map(|&c| format!("{} {}", quote(&s.columns[c].1), s.sql_type(c)))
                .collect();
            let pk: Vec<usize> = cols.iter().copied().filter(|c| s.primary_keys.contains(c)).collect();
            if !pk.is_empty() {
                let names: Vec<String> = pk.iter().map(|&c| quote(&s.columns[c].1)).collect();
                parts.push(format!("PRIMARY KEY ({})", names.join(", ")));
            }
            for &c in cols.iter().filter(|c| referenced.contains(c)) {
                if pk != [c] {
                    parts.push(format!("UNIQUE ({})", quote(&s.columns[c].1)));
                }
            }
            let fks: Vec<String> = s
                .foreign_keys
                .iter()
                .filter(|&&(a, _)| table_of(a) == t)
                .filter_map(|&(a, b)| {
                    let target = table_of(b);
                    (target == t || created[target]).then(|| {
                        format!(
                            "FOREIGN KEY ({}) REFERENCES {}.{}({})",
                            quote(&s.columns[a].1),
                            quote(&s.db_id),
                            quote(&s.tables[target]),
                            quote(&s.columns[b].1)
                        )
                    })
                })
                .collect();
            let all_fks = s.foreign_keys.iter().filter(|&&(a, _)| table_of(a) == t).count();
            let name = format!("{}.{}", quote(&s.db_id), quote(&s.tables[t]));
            let ddl = |fks: &[String]| {
                let body: Vec<String> = parts.iter().chain(fks).cloned().collect();
                format!("CREATE TABLE {name} ({})", body.join(", "))
            };
            let accepted = if conn.execute_batch(&ddl(&fks)).is_ok() {
                fks
            } else {
                // Keep the foreign keys DuckDB takes one by one.
                let mut ok: Vec<String> = Vec::new();
                for fk in fks {
                    let mut trial = ok.clone();
                    trial.push(fk);
                    if conn.execute_batch(&ddl(&trial)).is_ok() {
                        conn.execute_batch(&format!("DROP TABLE {name}")).unwrap();
                        ok = trial;
                    }
                }
                conn.execute_batch(&ddl(&ok))
                    .unwrap_or_else(|e| panic!("{name}: {e}\n{}", ddl(&ok)));
                ok
            };
            created[t] = true;
            out.tables += 1;
            out.foreign_keys += accepted.len();
            out.refused += all_fks - accepted.len();
        }
    }
    out
}

fn split_list(s: Option<String>) -> Vec<String> {
    s.filter(|s| !s.is_empty())
        .map(|s| s.split('\u{1f}').map(str::to_string).collect())
        .unwrap_or_default()
}

/// The catalog as the product reads it from DuckDB's own catalog functions.
fn read_from_duckdb(conn: &duckdb::Connection) -> CatalogSnapshot {
    let db = "database_name = current_database() AND NOT internal";
    let mut tables: Vec<CatalogTable> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT schema_name, table_name, comment, estimated_size FROM duckdb_tables() WHERE {db} \
             ORDER BY schema_name, table_name"
        ))
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (schema, table, comment, size) = row.unwrap();
        index.insert((schema.clone(), table.clone()), tables.len());
        let mut t = CatalogTable::new(TableName::new(schema, table), TableKind::Table);
        t.description = comment;
        t.row_count = size.map(|s| s.max(0) as u64);
        tables.push(t);
    }
    let mut stmt = conn
        .prepare(&format!(
            "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() WHERE {db} \
             ORDER BY schema_name, table_name, column_index"
        ))
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (schema, table, column, data_type, comment) = row.unwrap();
        let Some(&t) = index.get(&(schema, table)) else {
            continue;
        };
        let mut c = CatalogColumn::new(column, data_type);
        c.description = comment;
        tables[t].columns.push(c);
    }
    let mut stmt = conn
        .prepare(
            "SELECT schema_name, table_name, constraint_type, array_to_string(constraint_column_names, chr(31)), \
             referenced_table, array_to_string(referenced_column_names, chr(31)) FROM duckdb_constraints() \
             WHERE database_name = current_database() AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY') \
             ORDER BY schema_name, table_name, constraint_index",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (schema, table, kind, cols, referenced, ref_cols) = row.unwrap();
        let Some(&t) = index.get(&(schema.clone(), table)) else {
            continue;
        };
        let cols = split_list(cols);
        if kind == "PRIMARY KEY" {
            for c in tables[t].columns.iter_mut().filter(|c| cols.contains(&c.name)) {
                c.is_primary_key = true;
            }
        } else if let Some(referenced) = referenced {
            // DuckDB keeps foreign keys within a schema.
            let fk = ForeignKey {
                columns: cols,
                references: TableName::new(schema, referenced),
                referenced_columns: split_list(ref_cols),
            };
            if !tables[t].foreign_keys.contains(&fk) {
                tables[t].foreign_keys.push(fk);
            }
        }
    }
    CatalogSnapshot { tables }
}

/// The reference ranking: count the question's lowercase words that equal a part of the table's name (twice) or
/// of a column's name. No stemming, no weighting; it still reads every name of the catalog for each question.
fn naive(snapshot: &CatalogSnapshot, questions: &[Question]) -> (usize, usize, Vec<Duration>) {
    let parts = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|p| !p.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (mut top5, mut top10, mut times) = (0, 0, Vec::new());
    for q in questions {
        let start = Instant::now();
        let words: HashSet<String> = parts(&q.text).into_iter().filter(|w| w.len() > 2).collect();
        let mut scored: Vec<(usize, usize)> = snapshot
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let name = parts(&t.name.table).iter().filter(|p| words.contains(*p)).count() * 2;
                let cols: usize = t
                    .columns
                    .iter()
                    .map(|c| parts(&c.name).iter().filter(|p| words.contains(*p)).count())
                    .sum();
                (name + cols, i)
            })
            .filter(|(s, _)| *s > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        times.push(start.elapsed());
        let ranked: Vec<&TableName> = scored.iter().take(10).map(|&(_, i)| &snapshot.tables[i].name).collect();
        let within = |k: usize| q.gold.iter().all(|g| ranked.iter().take(k).any(|t| t.matches(g)));
        top5 += usize::from(within(5));
        top10 += usize::from(within(10));
    }
    (top5, top10, times)
}

fn run(label: &str, snapshot: CatalogSnapshot, tuning: Tuning, questions: &[Question], budget: Budget) -> Report {
    let start = Instant::now();
    let explorer = Explorer::with_tuning(snapshot, tuning);
    let build = start.elapsed();
    let report = spider::evaluate(&explorer, questions, budget);
    report.print(label, build);
    report
}

fn main() {
    let budget: usize = std::env::var("EXPLORER_BUDGET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let budget = Budget::tokens(budget).max_tables(10);
    let (schemas, questions) = spider::load();
    let json = spider::snapshot(&schemas);
    let multi = questions.iter().filter(|q| q.gold.len() > 1).count();
    println!(
        "schema explorer on Spider dev: {} questions ({multi} need 2+ tables) over {} schemas, {} tables, {} columns; \
         token budget {}\n",
        questions.len(),
        schemas.len(),
        json.tables.len(),
        json.tables.iter().map(|t| t.columns.len()).sum::<usize>(),
        budget.tokens
    );

    let main = run(
        "tables.json catalog",
        json.clone(),
        Tuning::default(),
        &questions,
        budget,
    );

    let conn = duckdb::Connection::open_in_memory().unwrap();
    let start = Instant::now();
    let created = create_in_duckdb(&conn, &schemas);
    let create_time = start.elapsed();
    let start = Instant::now();
    let from_duckdb = read_from_duckdb(&conn);
    let read_time = start.elapsed();
    assert_eq!(
        from_duckdb.tables.len(),
        json.tables.len(),
        "every Spider table created in DuckDB"
    );
    let duck = run("DuckDB catalog", from_duckdb, Tuning::default(), &questions, budget);
    println!(
        "{:<26} {} tables created in {:.0} ms, {} foreign keys declared ({} refused: cycles or type mismatches), \
         catalog read back in {:.0} ms",
        "",
        created.tables,
        create_time.as_secs_f64() * 1e3,
        created.foreign_keys,
        created.refused,
        read_time.as_secs_f64() * 1e3
    );

    let no_lifts = Tuning {
        namespace_weight: 0.0,
        neighbour_weight: 0.0,
        ..Tuning::default()
    };
    run("  ablation: words only", json.clone(), no_lifts, &questions, budget);
    run(
        "  tight budget: 300 tokens",
        json.clone(),
        Tuning::default(),
        &questions,
        Budget::tokens(300),
    );

    let (n5, n10, naive_times) = naive(&json, &questions);
    let naive_median = spider::percentile(&naive_times, 0.5);
    let explorer_median = spider::percentile(&main.times, 0.5);
    println!(
        "{:<26} recall@5 {:5.1}%  recall@10 {:5.1}%  time median {:7.3} ms (explorer/naive time: {:.2}x)",
        "naive word count",
        main.share(n5),
        main.share(n10),
        naive_median.as_secs_f64() * 1e3,
        explorer_median.as_secs_f64() / naive_median.as_secs_f64()
    );

    println!();
    for (label, r) in [("tables.json", &main), ("DuckDB", &duck)] {
        let median = spider::percentile(&r.times, 0.5);
        println!(
            "{label:<12} targets: recall@10 >= 90% {} | stretch recall@5 >= 95% {} | median < 20 ms {}",
            if r.share(r.top10) >= 90.0 { "met" } else { "MISSED" },
            if r.share(r.top5) >= 95.0 { "met" } else { "missed" },
            if median < Duration::from_millis(20) {
                "met"
            } else {
                "MISSED"
            },
        );
    }
    if let Ok(path) = std::env::var("EXPLORER_MISSES") {
        std::fs::write(&path, main.misses.join("\n")).unwrap();
        println!("questions not answered within the top 5 written to {path}");
    }
}
