//! The Spider dev set as the explorer benchmark sees it: 166 schemas side by side as one catalog, 1,034 questions
//! with the tables their gold SQL reads, and the recall / size / time figures of one run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pluto_duck_application::agent::{
    Budget, CatalogColumn, CatalogSnapshot, CatalogTable, Explorer, ForeignKey, TableKind, TableName,
};
use serde_json::Value;

pub struct Schema {
    pub db_id: String,
    pub tables: Vec<String>,
    /// (table index, name, Spider type: text | number | time | boolean | others)
    pub columns: Vec<(usize, String, String)>,
    pub primary_keys: Vec<usize>,
    /// (column index, referenced column index)
    pub foreign_keys: Vec<(usize, usize)>,
}

impl Schema {
    /// Our SQL type for a Spider column: keys (primary or foreign) that are numbers are integers, so that both ends
    /// of a key have the same type.
    pub fn sql_type(&self, col: usize) -> &'static str {
        let is_key = self.primary_keys.contains(&col) || self.foreign_keys.iter().any(|&(a, b)| a == col || b == col);
        match self.columns[col].2.as_str() {
            "number" if is_key => "INTEGER",
            "number" => "DOUBLE",
            "time" => "TIMESTAMP",
            "boolean" => "BOOLEAN",
            _ => "VARCHAR",
        }
    }
}

pub struct Question {
    pub db_id: String,
    pub text: String,
    pub gold: Vec<TableName>,
}

pub fn dataset_dir() -> PathBuf {
    let share = std::env::var_os("PLUTODUCK_SHARE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("pluto-duck")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/pluto-duck")))
        .unwrap_or_else(|| PathBuf::from(".local/share/pluto-duck"));
    share.join("datasets/spider")
}

fn read_json(name: &str) -> Value {
    let path = dataset_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the Spider dev set is missing ({}: {e}); run scripts/fetch-spider.sh to download it",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}); rerun scripts/fetch-spider.sh", path.display()))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

pub fn load() -> (Vec<Schema>, Vec<Question>) {
    let schemas: Vec<Schema> = read_json("tables.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let types = strings(&s["column_types"]);
            let columns = s["column_names_original"]
                .as_array()
                .unwrap()
                .iter()
                .zip(types)
                .map(|(c, ty)| (c[0].as_i64().unwrap(), c[1].as_str().unwrap().to_string(), ty))
                // Column 0 is Spider's `*`.
                .map(|(t, name, ty)| (t.max(0) as usize, name, ty))
                .collect();
            Schema {
                db_id: s["db_id"].as_str().unwrap().to_string(),
                tables: strings(&s["table_names_original"]),
                columns,
                primary_keys: s["primary_keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_u64().unwrap() as usize)
                    .collect(),
                foreign_keys: s["foreign_keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize))
                    .collect(),
            }
        })
        .collect();
    let by_id: HashMap<&str, &Schema> = schemas.iter().map(|s| (s.db_id.as_str(), s)).collect();
    let questions = read_json("dev.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let db_id = q["db_id"].as_str().unwrap().to_string();
            let schema = by_id[db_id.as_str()];
            let gold = gold_tables(&strings(&q["query_toks"]), &schema.tables)
                .into_iter()
                .map(|t| TableName::new(&db_id, &schema.tables[t]))
                .collect();
            Question {
                db_id,
                text: q["question"].as_str().unwrap().to_string(),
                gold,
            }
        })
        .collect();
    (schemas, questions)
}

/// The tables a gold query reads: every name after FROM or JOIN (also `FROM a, b`), in subqueries and set operations
/// too. The dataset's parsed `sql.from.table_units` cannot be used: in this release it keeps only the first table
/// of each FROM (a single unit for all 1,034 questions, though 459 of them read two tables or more).
pub fn gold_tables(tokens: &[String], tables: &[String]) -> Vec<usize> {
    let find = |tok: &str| tables.iter().position(|t| t.eq_ignore_ascii_case(tok));
    let mut gold = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        if !tok.eq_ignore_ascii_case("from") && !tok.eq_ignore_ascii_case("join") {
            continue;
        }
        let mut j = i + 1;
        while let Some(t) = tokens.get(j).and_then(|t| find(t)) {
            if !gold.contains(&t) {
                gold.push(t);
            }
            j += 1;
            if tokens.get(j).is_some_and(|t| t.eq_ignore_ascii_case("as")) {
                j += 2;
            }
            if tokens.get(j).is_some_and(|t| t == ",") {
                j += 1;
            } else {
                break;
            }
        }
    }
    gold.sort_unstable();
    gold
}

/// The catalog straight from tables.json: one schema per database, every table, its columns and declared keys.
pub fn snapshot(schemas: &[Schema]) -> CatalogSnapshot {
    let mut tables = Vec::new();
    for s in schemas {
        for (t, table) in s.tables.iter().enumerate() {
            let mut ct = CatalogTable::new(TableName::new(&s.db_id, table), TableKind::Table);
            for (c, (owner, name, _)) in s.columns.iter().enumerate().skip(1) {
                if *owner != t {
                    continue;
                }
                let mut col = CatalogColumn::new(name, s.sql_type(c));
                col.is_primary_key = s.primary_keys.contains(&c);
                ct = ct.column(col);
                for &(_, to) in s.foreign_keys.iter().filter(|(from, _)| *from == c) {
                    let (to_table, to_name, _) = &s.columns[to];
                    ct = ct.foreign_key(ForeignKey::new(
                        name,
                        TableName::new(&s.db_id, &s.tables[*to_table]),
                        to_name,
                    ));
                }
            }
            tables.push(ct);
        }
    }
    CatalogSnapshot { tables }
}

pub struct Report {
    pub questions: usize,
    pub top5: usize,
    pub top10: usize,
    /// Questions whose gold tables are all in the rendered context.
    pub in_context: usize,
    /// Estimated tokens of each context, and its real o200k count.
    pub tokens: Vec<usize>,
    pub o200k: Vec<usize>,
    pub times: Vec<Duration>,
    /// Questions whose gold tables are not all in the top 5, with what was ranked.
    pub misses: Vec<String>,
}

pub fn percentile<T: Copy + Ord>(values: &[T], p: f64) -> T {
    let mut v = values.to_vec();
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub fn evaluate(explorer: &Explorer, questions: &[Question], budget: Budget) -> Report {
    let mut r = Report {
        questions: questions.len(),
        top5: 0,
        top10: 0,
        in_context: 0,
        tokens: Vec::new(),
        o200k: Vec::new(),
        times: Vec::new(),
        misses: Vec::new(),
    };
    for q in questions {
        let start = Instant::now();
        let e = explorer.explore(&q.text, None, budget);
        r.times.push(start.elapsed());
        r.tokens.push(e.estimated_tokens);
        r.o200k.push(bpe_openai::o200k_base().count(&e.context));
        let ranked: Vec<&TableName> = e.tables.iter().map(|t| &t.name).collect();
        let within = |k: usize| q.gold.iter().all(|g| ranked.iter().take(k).any(|t| t.matches(g)));
        r.top5 += usize::from(within(5));
        r.top10 += usize::from(within(10));
        r.in_context += usize::from(q.gold.iter().all(|g| e.context_tables.iter().any(|t| t.matches(g))));
        if !within(5) {
            let gold: Vec<String> = q.gold.iter().map(ToString::to_string).collect();
            let top: Vec<String> = ranked.iter().take(10).map(|t| t.to_string()).collect();
            let at = if within(10) { "top 10" } else { "missed" };
            r.misses.push(format!(
                "{at} [{}] {}\n    gold: {}\n    top:  {}",
                q.db_id,
                q.text,
                gold.join(", "),
                top.join(", ")
            ));
        }
    }
    r
}

impl Report {
    pub fn share(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.questions as f64
    }

    pub fn print(&self, label: &str, build: Duration) {
        let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len() as f64;
        let worst = self
            .tokens
            .iter()
            .zip(&self.o200k)
            .filter(|(e, _)| **e > 0)
            .map(|(e, r)| *r as f64 / *e as f64)
            .fold(0.0, f64::max);
        println!(
            "{label:<26} recall@5 {:5.1}%  recall@10 {:5.1}%  in context {:5.1}%  tokens mean {:4.0} p95 {:4} \
             (o200k mean {:4.0}, at most {:.2} x the estimate)  time median {:6.3} ms p95 {:6.3} ms  build {:5.1} ms",
            self.share(self.top5),
            self.share(self.top10),
            self.share(self.in_context),
            mean(&self.tokens),
            percentile(&self.tokens, 0.95),
            mean(&self.o200k),
            worst,
            percentile(&self.times, 0.5).as_secs_f64() * 1e3,
            percentile(&self.times, 0.95).as_secs_f64() * 1e3,
            build.as_secs_f64() * 1e3,
        );
    }
}
