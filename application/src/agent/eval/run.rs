//! Running a set: each question's gold SQL and the contestant's SQL executed through the same [`Executor`], and
//! the results compared. The agent is a [`Contestant`]; the project's warehouse is the [`Executor`].

use std::time::Duration;

use async_trait::async_trait;
use tracing::{debug, instrument};

use super::compare::{compare, Comparison, RowOrder};
use super::report::{ErrorStage, EvalReport, QuestionReport, TokenUsage, Totals, Verdict};
use super::sets::{Question, QuestionSet};
use super::value::ResultSet;

/// Runs one read statement on the set's dataset and returns its whole result (the caller bounds its size and
/// time, and keeps it read-only: predicted SQL is untrusted).
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Executor: Send + Sync {
    async fn execute(&self, sql: &str) -> Result<ResultSet, ExecutionError>;
}

/// Why a statement did not run, as the engine says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecutionError {
    pub message: String,
}

impl ExecutionError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// What answers the questions: the agent, or a fake in tests.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Contestant: Send + Sync {
    async fn answer(&self, question: &Question) -> Result<Answer, AnswerError>;
}

/// The SQL a contestant settled on, and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sql: String,
    pub usage: Usage,
}

/// A contestant that produced no SQL, with what it spent trying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnswerError {
    pub message: String,
    pub usage: Usage,
}

impl AnswerError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            usage: Usage::default(),
        }
    }
}

/// What answering one question cost, as the contestant counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Attempts after the first (the agent's repairs of failed SQL).
    pub repairs: u32,
    /// Model calls and tool calls, as the agent counts its steps.
    pub steps: u32,
    pub tokens: TokenUsage,
    /// The contestant's own time, from question to SQL (execution of the SQL by the harness excluded).
    pub latency: Duration,
}

/// Reported after each question.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// 1-based.
    pub index: usize,
    pub total: usize,
    pub question: &'a QuestionReport,
}

/// Asks every question of `set` in order and judges each answer. A gold query that fails is reported as an error
/// of stage `gold` and the contestant is not asked (the set's check, `check_gold`, should have caught it).
#[instrument(skip_all, fields(set = %set.name))]
pub async fn run_set(
    set: &QuestionSet,
    contestant: &dyn Contestant,
    executor: &dyn Executor,
    mut progress: impl FnMut(Progress<'_>) + Send,
) -> EvalReport {
    let total = set.questions.len();
    let mut questions = Vec::with_capacity(total);
    for (i, question) in set.questions.iter().enumerate() {
        let report = run_question(question, contestant, executor).await;
        debug!(question = %question.id, verdict = report.verdict.label(), "question judged");
        progress(Progress {
            index: i + 1,
            total,
            question: &report,
        });
        questions.push(report);
    }
    EvalReport {
        set: set.name.clone(),
        dataset: set.dataset.clone(),
        totals: Totals::of(&questions),
        questions,
    }
}

async fn run_question(question: &Question, contestant: &dyn Contestant, executor: &dyn Executor) -> QuestionReport {
    let mut report = QuestionReport::new(question);
    let gold = match executor.execute(&question.gold_sql).await {
        Ok(gold) => gold,
        Err(e) => {
            report.verdict = Verdict::error(ErrorStage::Gold, e.message);
            return report;
        }
    };
    let answer = match contestant.answer(question).await {
        Ok(answer) => answer,
        Err(e) => {
            report.record_usage(&e.usage);
            report.verdict = Verdict::error(ErrorStage::Generation, e.message);
            return report;
        }
    };
    report.record_usage(&answer.usage);
    report.generated_sql = Some(answer.sql.clone());
    report.verdict = match executor.execute(&answer.sql).await {
        Err(e) => Verdict::error(ErrorStage::Execution, e.message),
        Ok(predicted) => match compare(&gold, &predicted, RowOrder::for_gold_sql(&question.gold_sql)) {
            Comparison::Match { .. } => Verdict::Correct,
            Comparison::Mismatch(why) => Verdict::Wrong {
                reason: why.to_string(),
            },
        },
    };
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::eval::sets::Difficulty;
    use crate::agent::eval::value::Value;

    fn question(id: &str, sql: &str, difficulty: Difficulty) -> Question {
        Question {
            id: id.into(),
            question: format!("question {id}"),
            gold_sql: sql.into(),
            notes: None,
            difficulty,
            tags: vec![],
        }
    }

    fn one(v: i128) -> ResultSet {
        ResultSet::new(vec!["n".into()], vec![vec![Value::Int(v)]])
    }

    #[tokio::test]
    async fn every_outcome_is_reported_with_its_usage() {
        let set = QuestionSet {
            name: "demo".into(),
            dataset: "chinook".into(),
            description: String::new(),
            path: Default::default(),
            questions: vec![
                question("right", "SELECT 1", Difficulty::Easy),
                question("wrong", "SELECT 2", Difficulty::Medium),
                question("no-sql", "SELECT 3", Difficulty::Hard),
                question("bad-sql", "SELECT 4", Difficulty::Hard),
                question("bad-gold", "SELEC 5", Difficulty::Easy),
            ],
        };
        let mut executor = MockExecutor::new();
        executor.expect_execute().returning(|sql| match sql {
            "SELECT 1" | "SELECT 1 AS n" => Ok(one(1)),
            "SELECT 2" => Ok(one(2)),
            "SELECT 3" => Ok(one(3)),
            "SELECT 4" => Ok(one(4)),
            "SELECT 22" => Ok(one(22)),
            other => Err(ExecutionError::new(format!("syntax error at {other:?}"))),
        });
        let usage = Usage {
            repairs: 1,
            steps: 3,
            tokens: TokenUsage {
                prompt: 100,
                completion: 20,
            },
            latency: Duration::from_millis(250),
        };
        let mut contestant = MockContestant::new();
        contestant.expect_answer().returning(move |q| match q.id.as_str() {
            "right" => Ok(Answer {
                sql: "SELECT 1 AS n".into(),
                usage,
            }),
            "wrong" => Ok(Answer {
                sql: "SELECT 22".into(),
                usage,
            }),
            "no-sql" => Err(AnswerError {
                message: "gave up".into(),
                usage,
            }),
            "bad-sql" => Ok(Answer {
                sql: "SELEC".into(),
                usage,
            }),
            other => panic!("{other} should not be asked"),
        });
        let mut seen = Vec::new();
        let report = run_set(&set, &contestant, &executor, |p| {
            seen.push((p.index, p.total, p.question.id.clone()))
        })
        .await;
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[4], (5, 5, "bad-gold".to_owned()));
        let verdicts: Vec<&str> = report.questions.iter().map(|q| q.verdict.label()).collect();
        assert_eq!(verdicts, ["correct", "wrong", "error", "error", "error"]);
        assert_eq!(
            report.questions[1].verdict,
            Verdict::Wrong {
                reason: "no column holds the values of gold column 1 (n)".into()
            }
        );
        assert_eq!(
            report.questions[2].verdict,
            Verdict::error(ErrorStage::Generation, "gave up")
        );
        assert_eq!(report.questions[2].generated_sql, None);
        assert_eq!(
            report.questions[3].verdict,
            Verdict::error(ErrorStage::Execution, "syntax error at \"SELEC\"")
        );
        assert_eq!(report.questions[4].verdict.label(), "error");
        assert_eq!(report.questions[4].repairs, 0);
        let t = &report.totals;
        assert_eq!((t.questions, t.correct, t.wrong, t.errors), (5, 1, 1, 3));
        assert_eq!(t.tokens.prompt, 400);
        assert_eq!(t.repairs, 4);
        assert!((t.accuracy - 0.2).abs() < 1e-12);
        assert!((t.mean_latency_ms - 250.0).abs() < 1e-9);
    }
}
