//! Question sets: plain YAML files, one set per file, each question with the gold SQL that answers it.
//!
//! ```yaml
//! name: chinook
//! dataset: chinook            # the sample data the gold SQL runs on (see `datasets`)
//! description: Questions about a digital music store.
//! questions:
//!   - id: tracks-per-genre
//!     question: How many tracks does each genre have?
//!     difficulty: easy        # easy | medium | hard
//!     tags: [join, aggregate]
//!     notes: optional, for people reading the set
//!     gold_sql: |
//!       SELECT g.name, count(*) FROM track t JOIN genre g USING (genre_id) GROUP BY g.name
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::EvalError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionSet {
    pub name: String,
    pub dataset: String,
    pub description: String,
    pub questions: Vec<Question>,
    /// The file the set was read from (not part of the file).
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub gold_sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub difficulty: Difficulty,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    Easy,
    Medium,
    Hard,
}

impl Difficulty {
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard];

    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file's top level, with questions read one by one so an error can name the question.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    name: String,
    dataset: String,
    #[serde(default)]
    description: String,
    questions: Vec<serde_yaml::Value>,
}

/// Every set in `dir`: each `*.yaml` / `*.yml` file, in file-name order. Set names must be unique across files.
pub fn load_sets(dir: &Path) -> Result<Vec<QuestionSet>, EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| EvalError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| EvalError::Io {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?
            .path();
        let yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut sets = Vec::with_capacity(files.len());
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files {
        let set = load_set(&path)?;
        if let Some(first) = names.insert(set.name.clone(), path.clone()) {
            return Err(EvalError::InvalidSet {
                path,
                question: None,
                message: format!("the set name {:?} is also used by {}", set.name, first.display()),
            });
        }
        sets.push(set);
    }
    Ok(sets)
}

/// One set file.
pub fn load_set(path: &Path) -> Result<QuestionSet, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse_set(&text, path)
}

/// A set from YAML text; `path` names it in errors.
pub fn parse_set(text: &str, path: &Path) -> Result<QuestionSet, EvalError> {
    let invalid = |question: Option<String>, message: String| EvalError::InvalidSet {
        path: path.to_path_buf(),
        question,
        message,
    };
    let raw: RawSet = serde_yaml::from_str(text).map_err(|e| invalid(None, e.to_string()))?;
    if raw.name.trim().is_empty() {
        return Err(invalid(None, "the set has an empty name".into()));
    }
    if raw.dataset.trim().is_empty() {
        return Err(invalid(None, "the set names no dataset".into()));
    }
    if raw.questions.is_empty() {
        return Err(invalid(None, "the set has no questions".into()));
    }
    let mut ids = HashSet::new();
    let mut questions = Vec::with_capacity(raw.questions.len());
    for (n, value) in raw.questions.into_iter().enumerate() {
        // Name the question by its id when it has one, by its position otherwise.
        let label = value
            .get("id")
            .and_then(serde_yaml::Value::as_str)
            .map_or_else(|| format!("#{}", n + 1), str::to_owned);
        let q: Question = serde_yaml::from_value(value).map_err(|e| invalid(Some(label.clone()), e.to_string()))?;
        let id_ok = !q.id.is_empty()
            && q.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !id_ok {
            return Err(invalid(
                Some(label),
                "an id is one or more letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if !ids.insert(q.id.clone()) {
            return Err(invalid(Some(label), "the id is used by an earlier question".into()));
        }
        if q.question.trim().is_empty() {
            return Err(invalid(Some(label), "the question is empty".into()));
        }
        if strip_sql_comments(&q.gold_sql)
            .trim()
            .trim_end_matches(';')
            .trim()
            .is_empty()
        {
            return Err(invalid(Some(label), "gold_sql is empty".into()));
        }
        questions.push(q);
    }
    Ok(QuestionSet {
        name: raw.name,
        dataset: raw.dataset,
        description: raw.description,
        questions,
        path: path.to_path_buf(),
    })
}

/// The SQL without `--` line comments and `/* */` block comments (strings are kept as they are).
fn strip_sql_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '-') if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            (None, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            (None, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: demo
dataset: chinook
description: Two questions.
questions:
  - id: q1
    question: How many artists are there?
    difficulty: easy
    gold_sql: SELECT count(*) FROM artist
  - id: q2
    question: Which genres have more than 100 tracks?
    difficulty: medium
    tags: [join, having]
    notes: counts tracks, not albums
    gold_sql: |
      SELECT g.name FROM track t JOIN genre g USING (genre_id)
      GROUP BY g.name HAVING count(*) > 100
"#;

    fn err(text: &str) -> String {
        parse_set(text, Path::new("sets/demo.yaml")).unwrap_err().to_string()
    }

    #[test]
    fn a_set_reads_with_its_questions() {
        let set = parse_set(GOOD, Path::new("sets/demo.yaml")).unwrap();
        assert_eq!((set.name.as_str(), set.dataset.as_str()), ("demo", "chinook"));
        assert_eq!(set.questions.len(), 2);
        assert_eq!(set.questions[1].difficulty, Difficulty::Medium);
        assert_eq!(set.questions[1].tags, ["join", "having"]);
        assert_eq!(set.questions[1].notes.as_deref(), Some("counts tracks, not albums"));
        assert!(set.questions[0].tags.is_empty() && set.questions[0].notes.is_none());
    }

    #[test]
    fn errors_name_the_file_and_the_question() {
        let dup = GOOD.replace("id: q2", "id: q1");
        assert_eq!(
            err(&dup),
            "sets/demo.yaml: question q1: the id is used by an earlier question"
        );
        let empty = GOOD.replace("gold_sql: SELECT count(*) FROM artist", "gold_sql: ' -- nothing\n  ;'");
        assert_eq!(err(&empty), "sets/demo.yaml: question q1: gold_sql is empty");
        let bad_level = GOOD.replace("difficulty: medium", "difficulty: tricky");
        let e = err(&bad_level);
        assert!(
            e.starts_with("sets/demo.yaml: question q2: unknown variant `tricky`"),
            "{e}"
        );
        let unknown = GOOD.replace("notes:", "note:");
        assert!(err(&unknown).contains("question q2: unknown field `note`"));
        let missing = GOOD.replace("    gold_sql: SELECT count(*) FROM artist\n", "");
        assert!(err(&missing).contains("question q1: missing field `gold_sql`"));
        let no_id = GOOD.replace("  - id: q1\n    question:", "  - question:");
        assert!(err(&no_id).contains("question #1: missing field `id`"));
        assert!(err("name: x\ndataset: y\nquestions: []\n").contains("no questions"));
        assert!(err("name: [").starts_with("sets/demo.yaml: "));
    }

    #[test]
    fn a_folder_loads_every_yaml_file_and_refuses_a_repeated_name() {
        let dir = std::env::temp_dir().join(format!("pd-eval-sets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.yaml"), GOOD.replace("name: demo", "name: second")).unwrap();
        std::fs::write(dir.join("a.yml"), GOOD).unwrap();
        std::fs::write(dir.join("README.md"), "not a set").unwrap();
        let sets = load_sets(&dir).unwrap();
        assert_eq!(
            sets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["demo", "second"]
        );
        assert_eq!(sets[0].path, dir.join("a.yml"));
        std::fs::write(dir.join("c.yaml"), GOOD).unwrap();
        let e = load_sets(&dir).unwrap_err().to_string();
        assert!(e.contains("c.yaml") && e.contains("also used by"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
