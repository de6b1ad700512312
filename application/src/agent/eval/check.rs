//! A set's own check: every gold query runs and returns at least one row. A gold query that fails or returns
//! nothing cannot tell a right answer from a wrong one.

use std::fmt;

use tracing::instrument;

use super::run::Executor;
use super::sets::QuestionSet;
use super::EvalError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldCheck {
    pub set: String,
    pub checked: usize,
    pub failures: Vec<GoldFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldFailure {
    pub question: String,
    pub problem: GoldProblem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoldProblem {
    Failed(String),
    NoRows,
}

impl GoldCheck {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Ok with the number of questions checked, or an error listing every failure.
    pub fn into_result(self) -> Result<usize, EvalError> {
        if self.passed() {
            Ok(self.checked)
        } else {
            Err(EvalError::GoldCheck {
                set: self.set.clone(),
                failures: self
                    .failures
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            })
        }
    }
}

impl fmt::Display for GoldFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            GoldProblem::Failed(message) => write!(f, "question {}: the gold SQL failed: {message}", self.question),
            GoldProblem::NoRows => write!(f, "question {}: the gold SQL returns no rows", self.question),
        }
    }
}

/// Runs every gold query of `set` (all of them, so one pass names every failure).
#[instrument(skip_all, fields(set = %set.name))]
pub async fn check_gold(set: &QuestionSet, executor: &dyn Executor) -> GoldCheck {
    let mut failures = Vec::new();
    for q in &set.questions {
        let problem = match executor.execute(&q.gold_sql).await {
            Err(e) => Some(GoldProblem::Failed(e.message)),
            Ok(result) if result.rows.is_empty() => Some(GoldProblem::NoRows),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            failures.push(GoldFailure {
                question: q.id.clone(),
                problem,
            });
        }
    }
    GoldCheck {
        set: set.name.clone(),
        checked: set.questions.len(),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::eval::run::{ExecutionError, MockExecutor};
    use crate::agent::eval::sets::parse_set;
    use crate::agent::eval::value::{ResultSet, Value};

    #[tokio::test]
    async fn failing_and_empty_gold_queries_are_named() {
        let set = parse_set(
            "name: s\ndataset: d\nquestions:\n\
             - {id: ok, question: q, difficulty: easy, gold_sql: SELECT 1}\n\
             - {id: empty, question: q, difficulty: easy, gold_sql: SELECT 1 WHERE false}\n\
             - {id: broken, question: q, difficulty: hard, gold_sql: SELEC 1}\n",
            std::path::Path::new("s.yaml"),
        )
        .unwrap();
        let mut executor = MockExecutor::new();
        executor.expect_execute().returning(|sql| match sql {
            "SELECT 1" => Ok(ResultSet::new(vec!["1".into()], vec![vec![Value::Int(1)]])),
            "SELECT 1 WHERE false" => Ok(ResultSet::new(vec!["1".into()], vec![])),
            _ => Err(ExecutionError::new("Parser Error: syntax error at or near \"SELEC\"")),
        });
        let check = check_gold(&set, &executor).await;
        assert!(!check.passed());
        assert_eq!(check.checked, 3);
        let e = check.into_result().unwrap_err().to_string();
        assert_eq!(
            e,
            "set s fails its check: question empty: the gold SQL returns no rows; question broken: the gold SQL \
             failed: Parser Error: syntax error at or near \"SELEC\""
        );
    }
}
