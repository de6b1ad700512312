//! The evaluation harness's building blocks on real DuckDB: the sample datasets load into the tables their
//! plans describe, the shipped question sets pass their own check, and a set's run judges answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use pluto_duck_application::agent::eval::{
    check_gold, dataset_plan, load_sets, run_set, Answer, AnswerError, Contestant, Difficulty, ExecutionError,
    Executor, Question, QuestionSet, ResultSet, Usage, Value, Verdict,
};

use crate::helpers::required_env;

/// The folder `scripts/setup.sh` unpacks the datasets into.
fn datasets_dir() -> PathBuf {
    let dir = PathBuf::from(required_env("PLUTODUCK_TEST_DATASETS"));
    assert!(
        dir.is_dir(),
        "PLUTODUCK_TEST_DATASETS={} is not a folder: run scripts/setup.sh",
        dir.display()
    );
    dir
}

fn sets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/sets")
}

/// An in-memory DuckDB holding one dataset, as the harness's executor.
struct DuckDb {
    conn: Mutex<duckdb::Connection>,
    _files: tempfile::TempDir,
}

impl DuckDb {
    fn load(dataset: &str) -> Self {
        let plan = dataset_plan(dataset, &datasets_dir()).unwrap();
        let files = tempfile::tempdir().unwrap();
        for f in &plan.files {
            std::fs::write(files.path().join(&f.name), &f.contents).unwrap();
        }
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch("SET threads = 2").unwrap();
        for statement in plan.statements(files.path()) {
            conn.execute_batch(&statement)
                .unwrap_or_else(|e| panic!("{dataset}: {e}\n{statement}"));
        }
        Self {
            conn: Mutex::new(conn),
            _files: files,
        }
    }

    fn run(&self, sql: &str) -> Result<ResultSet, String> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
        let batches: Vec<_> = stmt.query_arrow([]).map_err(|e| e.to_string())?.collect();
        let schema = stmt.schema();
        ResultSet::from_batches(&schema, &batches).map_err(|e| e.to_string())
    }

    fn scalar(&self, sql: &str) -> Value {
        self.run(sql).unwrap().rows.remove(0).remove(0)
    }
}

#[async_trait]
impl Executor for DuckDb {
    async fn execute(&self, sql: &str) -> Result<ResultSet, ExecutionError> {
        self.run(sql).map_err(ExecutionError::new)
    }
}

fn shipped_sets() -> Vec<QuestionSet> {
    load_sets(&sets_dir()).unwrap()
}

fn shipped(name: &str) -> QuestionSet {
    shipped_sets().into_iter().find(|s| s.name == name).unwrap()
}

#[test]
fn chinook_loads_into_the_classic_tables_with_keys() {
    let db = DuckDb::load("chinook");
    let counts = [
        ("artist", 275),
        ("album", 347),
        ("track", 3503),
        ("genre", 25),
        ("media_type", 5),
        ("playlist", 18),
        ("playlist_track", 8715),
        ("invoice", 412),
        ("invoice_line", 2240),
        ("customer", 59),
        ("employee", 8),
    ];
    for (table, rows) in counts {
        assert_eq!(
            db.scalar(&format!("SELECT count(*) FROM {table}")),
            Value::Int(rows),
            "{table}"
        );
    }
    // Keys and types as planned; money is exact.
    assert_eq!(
        db.scalar("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"),
        Value::Int(11)
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'"),
        Value::Int(10)
    );
    assert_eq!(
        db.scalar("SELECT data_type FROM information_schema.columns WHERE table_name = 'invoice' AND column_name = 'invoice_date'"),
        Value::Text("TIMESTAMP".into())
    );
    assert_eq!(
        db.scalar("SELECT sum(total)::VARCHAR FROM invoice"),
        Value::Text("2328.60".into())
    );
    assert_eq!(
        db.scalar("SELECT min(invoice_date)::VARCHAR || ' / ' || max(invoice_date)::VARCHAR FROM invoice"),
        Value::Text("2007-01-01 00:00:00 / 2011-12-22 00:00:00".into())
    );
    // NULLs where the fixture has them, text exactly as written (accents, quotes).
    assert_eq!(
        db.scalar("SELECT count(*) FROM track WHERE composer IS NULL"),
        Value::Int(978)
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM employee WHERE reports_to IS NULL"),
        Value::Int(1)
    );
    assert_eq!(
        db.scalar("SELECT first_name || ' ' || last_name FROM customer WHERE customer_id = 1"),
        Value::Text("Luís Gonçalves".into())
    );
}

#[test]
fn nycflights13_loads_with_types_and_local_hours() {
    let db = DuckDb::load("nycflights13");
    for (table, rows) in [
        ("airlines", 16),
        ("airports", 1458),
        ("planes", 3322),
        ("weather", 26115),
        ("flights", 336_776),
    ] {
        assert_eq!(
            db.scalar(&format!("SELECT count(*) FROM {table}")),
            Value::Int(rows),
            "{table}"
        );
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM flights WHERE dep_time IS NULL"),
        Value::Int(8255)
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM planes WHERE speed IS NOT NULL"),
        Value::Int(23)
    );
    // time_hour is the scheduled local hour: the first flight of the year left at 05:15.
    assert_eq!(
        db.scalar("SELECT min(time_hour)::VARCHAR FROM flights"),
        Value::Text("2013-01-01 05:00:00".into())
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM flights WHERE hour(time_hour) <> hour OR time_hour::DATE <> make_date(year, month, day)"),
        Value::Int(0)
    );
    assert_eq!(
        db.scalar("SELECT data_type FROM information_schema.columns WHERE table_name = 'weather' AND column_name = 'wind_speed'"),
        Value::Text("DOUBLE".into())
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'"),
        Value::Int(3)
    );
}

#[tokio::test]
async fn shipped_sets_pass_their_check() {
    let sets = shipped_sets();
    let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["chinook", "nycflights13"]);
    for set in &sets {
        assert!(
            set.questions.len() >= 40,
            "{}: {} questions",
            set.name,
            set.questions.len()
        );
        for d in Difficulty::ALL {
            assert!(
                set.questions.iter().filter(|q| q.difficulty == d).count() >= 8,
                "{}: too few {d} questions",
                set.name
            );
        }
        let db = DuckDb::load(&set.dataset);
        let check = check_gold(set, &db).await;
        let failures: Vec<String> = check.failures.iter().map(ToString::to_string).collect();
        assert!(failures.is_empty(), "{}:\n{}", set.name, failures.join("\n"));
        assert_eq!(check.checked, set.questions.len());
    }
}

/// Answers with the gold SQL, except where it is told otherwise: other SQL, or no SQL at all.
struct Replay {
    answers: BTreeMap<&'static str, Result<&'static str, &'static str>>,
}

impl Replay {
    fn gold() -> Self {
        Self {
            answers: BTreeMap::new(),
        }
    }
}

#[async_trait]
impl Contestant for Replay {
    async fn answer(&self, question: &Question) -> Result<Answer, AnswerError> {
        let sql = match self.answers.get(question.id.as_str()) {
            None => question.gold_sql.clone(),
            Some(Ok(sql)) => (*sql).to_owned(),
            Some(Err(message)) => return Err(AnswerError::new(*message)),
        };
        Ok(Answer {
            sql,
            usage: Usage {
                steps: 1,
                ..Usage::default()
            },
        })
    }
}

#[tokio::test]
async fn a_contestant_replaying_the_gold_sql_scores_every_question() {
    for set in shipped_sets() {
        let db = DuckDb::load(&set.dataset);
        let mut progress = 0;
        let report = run_set(&set, &Replay::gold(), &db, |p| {
            progress += 1;
            assert_eq!((p.index, p.total), (progress, set.questions.len()));
        })
        .await;
        let not_correct: Vec<_> = report
            .questions
            .iter()
            .filter(|q| q.verdict != Verdict::Correct)
            .map(|q| (q.id.clone(), q.verdict.clone()))
            .collect();
        assert!(not_correct.is_empty(), "{}: {not_correct:?}", set.name);
        assert_eq!(report.totals.accuracy, 1.0);
        assert_eq!(report.totals.steps, set.questions.len() as u64);
        assert!(report.totals.by_difficulty.iter().all(|d| d.accuracy == 1.0));
    }
}

#[tokio::test]
async fn wrong_answers_are_exactly_the_ones_reported_wrong() {
    let set = shipped("nycflights13");
    let db = DuckDb::load("nycflights13");
    let answers = BTreeMap::from([
        // Wrong: cancelled flights counted out, a missing DISTINCT, the asked order lost, NULL delays counted as 0.
        (
            "flight-count",
            Ok("SELECT count(*) FROM flights WHERE dep_time IS NOT NULL"),
        ),
        ("destination-count", Ok("SELECT count(dest) FROM flights")),
        (
            "flights-per-month",
            Ok("SELECT month, count(*) AS n FROM flights GROUP BY month ORDER BY n DESC"),
        ),
        (
            "average-departure-delay",
            Ok("SELECT avg(coalesce(dep_delay, 0)) FROM flights"),
        ),
        // Right, though written differently: columns swapped and named otherwise, another date test.
        (
            "flights-per-origin",
            Ok("SELECT count(*) AS n, origin AS airport FROM flights GROUP BY 2"),
        ),
        (
            "christmas-flights",
            Ok("SELECT count(*) FROM flights WHERE time_hour::DATE = DATE '2013-12-25'"),
        ),
        // Errors: no SQL, and SQL that does not run.
        ("cancelled-flights", Err("the model gave up")),
        ("unknown-planes", Ok("SELECT count(*) FROM flight")),
    ]);
    let report = run_set(&set, &Replay { answers }, &db, |_| {}).await;
    let judged: BTreeMap<&str, String> = report
        .questions
        .iter()
        .filter(|q| q.verdict != Verdict::Correct)
        .map(|q| (q.id.as_str(), q.verdict.detail()))
        .collect();
    let ids: Vec<&str> = judged.keys().copied().collect();
    assert_eq!(
        ids,
        [
            "average-departure-delay",
            "cancelled-flights",
            "destination-count",
            "flight-count",
            "flights-per-month",
            "unknown-planes"
        ],
        "{}",
        report.render_table()
    );
    assert_eq!(
        judged["flights-per-month"],
        "the right rows in the wrong order (the gold query orders them)"
    );
    assert_eq!(judged["cancelled-flights"], "generation: the model gave up");
    assert!(
        judged["unknown-planes"].starts_with("execution: Catalog Error"),
        "{}",
        judged["unknown-planes"]
    );
    let t = &report.totals;
    assert_eq!(
        (t.correct, t.wrong, t.errors, t.gold_errors),
        (set.questions.len() - 6, 4, 2, 0)
    );
    let table = report.render_table();
    assert!(table.contains("flights-per-month"), "{table}");
}
