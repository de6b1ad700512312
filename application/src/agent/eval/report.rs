//! What a run of a set reports: a line per question and the totals, as serde JSON (for the API and files) or as
//! a fixed-width table for a terminal.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::run::Usage;
use super::sets::{Difficulty, Question};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub set: String,
    pub dataset: String,
    pub questions: Vec<QuestionReport>,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionReport {
    pub id: String,
    pub question: String,
    pub difficulty: Difficulty,
    pub gold_sql: String,
    /// None when the contestant produced no SQL (or was not asked).
    pub generated_sql: Option<String>,
    pub verdict: Verdict,
    pub repairs: u32,
    pub steps: u32,
    pub tokens: TokenUsage,
    pub latency_ms: u64,
}

impl QuestionReport {
    /// A question not judged yet, with nothing spent.
    pub(super) fn new(q: &Question) -> Self {
        Self {
            id: q.id.clone(),
            question: q.question.clone(),
            difficulty: q.difficulty,
            gold_sql: q.gold_sql.clone(),
            generated_sql: None,
            verdict: Verdict::error(ErrorStage::Generation, "not run"),
            repairs: 0,
            steps: 0,
            tokens: TokenUsage::default(),
            latency_ms: 0,
        }
    }

    pub(super) fn record_usage(&mut self, usage: &Usage) {
        self.repairs = usage.repairs;
        self.steps = usage.steps;
        self.tokens = usage.tokens;
        self.latency_ms = u64::try_from(usage.latency.as_millis()).unwrap_or(u64::MAX);
    }

    /// Whether the contestant was asked (the gold query ran).
    pub fn asked(&self) -> bool {
        !matches!(
            self.verdict,
            Verdict::Error {
                stage: ErrorStage::Gold,
                ..
            }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verdict {
    /// The predicted result is the gold result (see `compare`).
    Correct,
    Wrong {
        reason: String,
    },
    /// No result to compare: the contestant gave no SQL, its SQL failed, or the gold SQL failed.
    Error {
        stage: ErrorStage,
        message: String,
    },
}

impl Verdict {
    pub fn error(stage: ErrorStage, message: impl Into<String>) -> Self {
        Verdict::Error {
            stage,
            message: message.into(),
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Correct => "correct",
            Verdict::Wrong { .. } => "wrong",
            Verdict::Error { .. } => "error",
        }
    }

    /// The reason or message, for a table's last column.
    pub fn detail(&self) -> String {
        match self {
            Verdict::Correct => String::new(),
            Verdict::Wrong { reason } => reason.clone(),
            Verdict::Error { stage, message } => format!("{}: {message}", stage.as_str()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorStage {
    Generation,
    Execution,
    Gold,
}

impl ErrorStage {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorStage::Generation => "generation",
            ErrorStage::Execution => "execution",
            ErrorStage::Gold => "gold",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt: u64,
    pub completion: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.prompt + self.completion
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub questions: usize,
    pub correct: usize,
    pub wrong: usize,
    /// Every error, gold errors included.
    pub errors: usize,
    /// Questions whose gold SQL failed (the set is broken there; they count as errors).
    pub gold_errors: usize,
    /// Correct over all questions (0 for an empty set).
    pub accuracy: f64,
    /// One entry per difficulty present, easy to hard.
    pub by_difficulty: Vec<DifficultyTotals>,
    /// Over the questions the contestant was asked.
    pub mean_latency_ms: f64,
    pub tokens: TokenUsage,
    pub repairs: u64,
    pub steps: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DifficultyTotals {
    pub difficulty: Difficulty,
    pub questions: usize,
    pub correct: usize,
    pub accuracy: f64,
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Totals {
    pub fn of(questions: &[QuestionReport]) -> Self {
        let correct =
            |qs: &mut dyn Iterator<Item = &QuestionReport>| qs.filter(|q| q.verdict == Verdict::Correct).count();
        let n = questions.len();
        let right = correct(&mut questions.iter());
        let wrong = questions
            .iter()
            .filter(|q| matches!(q.verdict, Verdict::Wrong { .. }))
            .count();
        let asked: Vec<&QuestionReport> = questions.iter().filter(|q| q.asked()).collect();
        let by_difficulty = Difficulty::ALL
            .iter()
            .filter_map(|&d| {
                let total = questions.iter().filter(|q| q.difficulty == d).count();
                (total > 0).then(|| {
                    let ok = correct(&mut questions.iter().filter(|q| q.difficulty == d));
                    DifficultyTotals {
                        difficulty: d,
                        questions: total,
                        correct: ok,
                        accuracy: ratio(ok, total),
                    }
                })
            })
            .collect();
        let latency: u64 = asked.iter().map(|q| q.latency_ms).sum();
        Totals {
            questions: n,
            correct: right,
            wrong,
            errors: n - right - wrong,
            gold_errors: n - asked.len(),
            accuracy: ratio(right, n),
            by_difficulty,
            mean_latency_ms: if asked.is_empty() {
                0.0
            } else {
                latency as f64 / asked.len() as f64
            },
            tokens: TokenUsage {
                prompt: questions.iter().map(|q| q.tokens.prompt).sum(),
                completion: questions.iter().map(|q| q.tokens.completion).sum(),
            },
            repairs: questions.iter().map(|q| u64::from(q.repairs)).sum(),
            steps: questions.iter().map(|q| u64::from(q.steps)).sum(),
        }
    }
}

impl EvalReport {
    pub fn to_json(&self) -> String {
        // A report is plain data: serializing it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A fixed-width table: a line per question, then the totals.
    pub fn render_table(&self) -> String {
        const ID: usize = 28;
        const DETAIL: usize = 60;
        let id_width = self
            .questions
            .iter()
            .map(|q| q.id.chars().count())
            .max()
            .unwrap_or(2)
            .clamp(2, ID);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "set {} (dataset {}): {} questions",
            self.set,
            self.dataset,
            self.questions.len()
        );
        let _ = writeln!(
            out,
            "{:<id_width$}  {:<6}  {:<7}  {:>7}  {:>5}  {:>8}  {:>9}  DETAIL",
            "ID", "LEVEL", "VERDICT", "REPAIRS", "STEPS", "TOKENS", "LATENCY"
        );
        for q in &self.questions {
            let line = format!(
                "{:<id_width$}  {:<6}  {:<7}  {:>7}  {:>5}  {:>8}  {:>9}  {}",
                fit(&q.id, id_width),
                q.difficulty.as_str(),
                q.verdict.label(),
                q.repairs,
                q.steps,
                q.tokens.total(),
                format!("{} ms", q.latency_ms),
                fit(&q.verdict.detail(), DETAIL),
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let t = &self.totals;
        let _ = write!(out, "accuracy {} ({}/{})", percent(t.accuracy), t.correct, t.questions);
        for d in &t.by_difficulty {
            let _ = write!(
                out,
                "  {} {} ({}/{})",
                d.difficulty,
                percent(d.accuracy),
                d.correct,
                d.questions
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "correct {}, wrong {}, errors {} (gold {}); mean latency {:.0} ms; tokens {} prompt + {} completion; repairs {}",
            t.correct,
            t.wrong,
            t.errors,
            t.gold_errors,
            t.mean_latency_ms,
            t.tokens.prompt,
            t.tokens.completion,
            t.repairs
        );
        out
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// One line of at most `width` characters, cut with an ellipsis.
fn fit(text: &str, width: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= width {
        return line;
    }
    let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, difficulty: Difficulty, verdict: Verdict, latency_ms: u64) -> QuestionReport {
        QuestionReport {
            id: id.into(),
            question: format!("{id}?"),
            difficulty,
            gold_sql: "SELECT 1".into(),
            generated_sql: Some("SELECT 1".into()),
            verdict,
            repairs: 1,
            steps: 2,
            tokens: TokenUsage {
                prompt: 10,
                completion: 5,
            },
            latency_ms,
        }
    }

    fn report() -> EvalReport {
        let questions = vec![
            q("a", Difficulty::Easy, Verdict::Correct, 100),
            q(
                "b-question-with-a-rather-long-identifier",
                Difficulty::Easy,
                Verdict::Wrong {
                    reason: "the rows differ".into(),
                },
                300,
            ),
            q(
                "c",
                Difficulty::Hard,
                Verdict::error(ErrorStage::Execution, "Binder Error:\n  no column x"),
                200,
            ),
            q("d", Difficulty::Hard, Verdict::error(ErrorStage::Gold, "broken"), 0),
        ];
        EvalReport {
            set: "demo".into(),
            dataset: "chinook".into(),
            totals: Totals::of(&questions),
            questions,
        }
    }

    #[test]
    fn totals_count_verdicts_per_difficulty() {
        let t = report().totals;
        assert_eq!(
            (t.questions, t.correct, t.wrong, t.errors, t.gold_errors),
            (4, 1, 1, 2, 1)
        );
        assert_eq!(t.accuracy, 0.25);
        assert_eq!(t.by_difficulty.len(), 2);
        assert_eq!(
            (t.by_difficulty[0].difficulty, t.by_difficulty[0].accuracy),
            (Difficulty::Easy, 0.5)
        );
        assert_eq!(
            (t.by_difficulty[1].difficulty, t.by_difficulty[1].accuracy),
            (Difficulty::Hard, 0.0)
        );
        assert_eq!(t.mean_latency_ms, 200.0);
        assert_eq!(
            (t.tokens.prompt, t.tokens.completion, t.repairs, t.steps),
            (40, 20, 4, 8)
        );
        assert_eq!(Totals::of(&[]).accuracy, 0.0);
    }

    #[test]
    fn the_table_has_fixed_columns_and_one_line_per_question() {
        let table = report().render_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 1 + 1 + 4 + 2, "{table}");
        assert_eq!(lines[0], "set demo (dataset chinook): 4 questions");
        assert!(
            lines[1].starts_with(
                "ID                            LEVEL   VERDICT  REPAIRS  STEPS    TOKENS    LATENCY  DETAIL"
            ),
            "{}",
            lines[1]
        );
        assert_eq!(
            lines[2],
            "a                             easy    correct        1      2        15     100 ms"
        );
        assert!(
            lines[3].starts_with("b-question-with-a-rather-lo…  easy    wrong"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].ends_with("execution: Binder Error: no column x"),
            "{}",
            lines[4]
        );
        assert_eq!(lines[6], "accuracy 25.0% (1/4)  easy 50.0% (1/2)  hard 0.0% (0/2)");
        assert!(lines[7].starts_with("correct 1, wrong 1, errors 2 (gold 1); mean latency 200 ms"));
    }

    #[test]
    fn json_round_trips_with_tagged_verdicts() {
        let r = report();
        let json = r.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["questions"][0]["verdict"], serde_json::json!({"outcome": "correct"}));
        assert_eq!(
            v["questions"][2]["verdict"],
            serde_json::json!({"outcome": "error", "stage": "execution", "message": "Binder Error:\n  no column x"})
        );
        assert_eq!(v["questions"][1]["difficulty"], "easy");
        assert_eq!(v["totals"]["by_difficulty"][1]["difficulty"], "hard");
        let back: EvalReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
