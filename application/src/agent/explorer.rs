//! The schema explorer: ranks a project's tables and columns against a question and renders what fits a token
//! budget for the model. Pure, deterministic and fast: the catalog is indexed once ([`Explorer::new`]), then each
//! question costs a few index look-ups per word.
//!
//! Ranking, in order:
//! 1. The question's content words (stop words and sort phrases dropped, adjacent pairs also tried as one word)
//!    are looked up in an inverted index of table names, column names, descriptions and sampled values: by the
//!    word's singular form, its Snowball stem, a small thesaurus, and as an abbreviation (`indep`). Identifiers are
//!    split on case, digits and separators, abbreviations expanded, compounds of two catalog words split.
//! 2. Each word adds `idf x weight(field) x quality(match)` to a table, its best hit only; idf is BM25's over
//!    tables. Four-digit years hit date-like columns; question n-grams equal to a sampled value hit its column.
//! 3. A table is lifted by the coverage of the question by its whole namespace (`catalog.schema`), since the
//!    tables one question needs live together, and by its best two neighbours in the join graph (declared
//!    foreign keys and joins inferred from names such as `customer_id` -> `customers.id`).
//! 4. Ties break by qualified name. The context holds the best tables whose score is within a share of the top
//!    one, the tables that bridge them in the join graph, and the joins, never more than the budget.

mod index;
mod joins;
mod lexicon;
mod rank;
mod render;
#[cfg(test)]
mod tests;
mod text;

use std::collections::BTreeSet;

pub use render::estimate_tokens;

use self::index::{Field, Index};
use self::rank::Via;
use self::text::Normalizer;
use crate::agent::catalog::{CatalogSnapshot, TableKind, TableName};

/// How much context the model may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Upper bound of [`Exploration::estimated_tokens`] (see [`estimate_tokens`]).
    pub tokens: usize,
    /// How many tables the ranking returns, and the most the context holds before bridge tables.
    pub max_tables: usize,
}

impl Budget {
    pub const fn tokens(tokens: usize) -> Self {
        Self { tokens, max_tables: 10 }
    }

    pub const fn max_tables(mut self, max_tables: usize) -> Self {
        self.max_tables = max_tables;
        self
    }
}

/// The ranking's constants. The defaults are what the Spider benchmark (`tests/benches/explorer.rs`) settled on.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// Weight of words from the conversation so far, relative to the question's.
    pub history_weight: f32,
    /// Weight of two adjacent question words tried as one (`high schoolers` -> `highschooler`).
    pub compound_weight: f32,
    /// Weight of a word of a table's name, a sampled value, the table's description and a column's description;
    /// a column name's is 1.
    pub table_name_weight: f32,
    pub value_weight: f32,
    pub description_weight: f32,
    pub column_description_weight: f32,
    /// Match quality of a shared inflection-free form (hired, hiring), a shared Snowball stem, a thesaurus synonym, an abbreviation prefix, a year on a date column and a
    /// sampled value; an exact singular form is 1.
    pub light_quality: f32,
    pub stem_quality: f32,
    pub synonym_quality: f32,
    /// Match quality of the doer of a verb (won -> winner, visit -> visitor) and back.
    pub agent_quality: f32,
    /// Weight of two or three consecutive question words matching a whole multi-word name.
    pub phrase_weight: f32,
    /// Weight of the initials of three or four question words (miles per gallon -> mpg).
    pub acronym_weight: f32,
    pub prefix_quality: f32,
    /// Shortest name part taken as an abbreviation of a longer question word.
    pub prefix_min: usize,
    pub year_quality: f32,
    pub value_quality: f32,
    /// Share of the namespace's coverage of the question added to each of its tables.
    pub namespace_weight: f32,
    /// Share of the two best join neighbours' lexical scores added to a table.
    pub neighbour_weight: f32,
    /// Tables scoring below this share of the best table stay out of the context.
    pub context_cutoff: f32,
    /// Tables with at most this many columns are rendered whole; wider ones show their matched and key columns.
    pub full_columns: usize,
    /// Longest join path (in joins) searched between two context tables.
    pub max_join_hops: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            history_weight: 0.5,
            compound_weight: 0.9,
            table_name_weight: 2.0,
            value_weight: 0.9,
            description_weight: 0.6,
            column_description_weight: 0.45,
            light_quality: 0.85,
            stem_quality: 0.85,
            synonym_quality: 0.7,
            agent_quality: 0.6,
            acronym_weight: 0.9,
            phrase_weight: 0.5,
            prefix_quality: 0.45,
            prefix_min: 4,
            year_quality: 0.4,
            value_quality: 1.2,
            namespace_weight: 0.75,
            neighbour_weight: 0.4,
            context_cutoff: 0.4,
            full_columns: 25,
            max_join_hops: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exploration {
    /// Best first, at most [`Budget::max_tables`], only tables with a positive score.
    pub tables: Vec<RankedTable>,
    /// Tables in [`Exploration::context`], in the order rendered: ranked ones first, then bridges.
    pub context_tables: Vec<TableName>,
    /// How the context tables join: each path links a context table to one rendered before it.
    pub joins: Vec<JoinPath>,
    pub context: String,
    pub estimated_tokens: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RankedTable {
    pub name: TableName,
    pub kind: TableKind,
    pub score: f64,
    /// The part of `score` from the table's own words; the rest comes from its namespace and join neighbours.
    pub lexical_score: f64,
    /// Why it matched, strongest first.
    pub matches: Vec<Match>,
    /// Matched columns and keys: what a wide table is reduced to.
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The question word (or value text) that matched.
    pub term: String,
    pub target: MatchTarget,
    pub kind: MatchKind,
    pub strength: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchTarget {
    TableName,
    TableDescription,
    Column(String),
    ColumnDescription(String),
    Value { column: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Word,
    Stem,
    Synonym,
    /// Consecutive question words equal to a whole multi-word name.
    Phrase,
    /// The doer of a verb, or the verb of a doer (won -> winner).
    Derived,
    Abbreviation,
    Year,
    Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinPath {
    pub from: TableName,
    pub to: TableName,
    pub steps: Vec<JoinStep>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinStep {
    pub left: TableName,
    pub left_columns: Vec<String>,
    pub right: TableName,
    pub right_columns: Vec<String>,
    /// Inferred from column names, not a declared foreign key.
    pub inferred: bool,
}

fn assemble(ddl: &str, join_lines: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(ddl.len() + 80 * join_lines.len());
    out.push_str(ddl);
    for line in join_lines {
        out.push_str(line);
    }
    out
}

pub struct Explorer {
    snapshot: CatalogSnapshot,
    index: Index,
    norm: Normalizer,
    tuning: Tuning,
}

impl Explorer {
    pub fn new(snapshot: CatalogSnapshot) -> Self {
        Self::with_tuning(snapshot, Tuning::default())
    }

    pub fn with_tuning(snapshot: CatalogSnapshot, tuning: Tuning) -> Self {
        let norm = Normalizer::new();
        let index = Index::build(&snapshot, &norm);
        Self {
            snapshot,
            index,
            norm,
            tuning,
        }
    }

    pub fn snapshot(&self) -> &CatalogSnapshot {
        &self.snapshot
    }

    /// Edges of the join graph: declared foreign keys plus inferred joins.
    pub fn join_count(&self) -> usize {
        self.index.edges.len()
    }

    pub fn explore(&self, question: &str, history_hint: Option<&str>, budget: Budget) -> Exploration {
        let terms = rank::terms(question, history_hint, &self.norm, &self.tuning);
        let scores = rank::score(&self.index, terms, question, &self.tuning);
        let tables = &self.snapshot.tables;
        let mut order: Vec<usize> = (0..tables.len()).filter(|&t| scores.score[t] > 0.0).collect();
        order.sort_by(|&a, &b| {
            scores.score[b]
                .total_cmp(&scores.score[a])
                .then_with(|| tables[a].name.cmp(&tables[b].name))
        });
        order.truncate(budget.max_tables);

        let mut hits_of: Vec<Vec<&rank::Hit>> = vec![Vec::new(); order.len()];
        for h in &scores.hits {
            if let Some(pos) = order.iter().position(|&t| t == h.table as usize) {
                hits_of[pos].push(h);
            }
        }
        let ranked: Vec<RankedTable> = order
            .iter()
            .zip(&mut hits_of)
            .map(|(&t, hits)| {
                hits.sort_by(|a, b| b.gain.total_cmp(&a.gain).then(a.term.cmp(&b.term)));
                let table = &tables[t];
                let chosen = self.chosen_columns(t, hits);
                RankedTable {
                    name: table.name.clone(),
                    kind: table.kind,
                    score: f64::from(scores.score[t]),
                    lexical_score: f64::from(scores.own[t]),
                    matches: hits.iter().map(|h| self.describe_hit(h, &scores)).collect(),
                    columns: chosen.iter().map(|&c| table.columns[c as usize].name.clone()).collect(),
                }
            })
            .collect();

        // Tables first, then the inferred joins (declared ones show as REFERENCES); every addition is checked
        // against the budget on the whole text.
        let mut ddl = String::new();
        let mut join_lines: BTreeSet<String> = BTreeSet::new();
        let fits = |ddl: &str, extra: &str, lines: &BTreeSet<String>| {
            estimate_tokens(&assemble(&format!("{ddl}{extra}"), lines)) <= budget.tokens
        };
        let mut in_context: Vec<usize> = Vec::new();
        let top = order.first().map_or(0.0, |&t| scores.score[t]);
        for (pos, &t) in order.iter().enumerate() {
            if scores.score[t] < self.tuning.context_cutoff * top {
                break;
            }
            let table = &tables[t];
            let chosen = self.chosen_columns(t, &hits_of[pos]);
            let all: Vec<u32> = (0..table.columns.len() as u32).collect();
            let mut options = Vec::new();
            if table.columns.len() <= self.tuning.full_columns {
                options.push(render::table_ddl(table, &all, true));
            }
            options.push(render::table_ddl(table, &chosen, true));
            options.push(render::table_ddl(table, &chosen, false));
            if let Some(text) = options.into_iter().find(|d| fits(&ddl, d, &join_lines)) {
                ddl.push_str(&text);
                in_context.push(t);
            }
        }

        let mut joins = Vec::new();
        for path in self.join_paths(&in_context) {
            let mut added = String::new();
            let mut bridges = Vec::new();
            for &(a, _) in &path {
                if !in_context.contains(&a) && !bridges.contains(&a) {
                    let keys = self.chosen_columns(a, &[]);
                    added.push_str(&render::table_ddl(&tables[a], &keys, false));
                    bridges.push(a);
                }
            }
            let mut lines = join_lines.clone();
            lines.extend(
                path.iter()
                    .filter(|&&(_, e)| self.index.edges[e as usize].inferred)
                    .map(|&(_, e)| self.join_line(e)),
            );
            if !fits(&ddl, &added, &lines) {
                continue;
            }
            ddl.push_str(&added);
            join_lines = lines;
            in_context.extend(bridges);
            joins.push(self.join_path(&path));
        }
        let context = assemble(&ddl, &join_lines);

        Exploration {
            tables: ranked,
            context_tables: in_context.iter().map(|&t| tables[t].name.clone()).collect(),
            joins,
            estimated_tokens: estimate_tokens(&context),
            context,
        }
    }

    /// Matched columns, keys and join columns of table `t`, in table order.
    fn chosen_columns(&self, t: usize, hits: &[&rank::Hit]) -> Vec<u32> {
        let table = &self.snapshot.tables[t];
        let mut cols: BTreeSet<u32> = hits.iter().filter_map(|h| h.field.column()).collect();
        cols.extend(
            table
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_primary_key)
                .map(|(i, _)| i as u32),
        );
        for &(_, e) in &self.index.adjacency[t] {
            let edge = &self.index.edges[e as usize];
            if edge.from as usize == t {
                cols.extend(&edge.columns);
            }
            if edge.to as usize == t {
                cols.extend(&edge.to_columns);
            }
        }
        cols.into_iter().collect()
    }

    fn describe_hit(&self, h: &rank::Hit, scores: &rank::Scores) -> Match {
        let table = &self.snapshot.tables[h.table as usize];
        let col = |c: u32| table.columns[c as usize].name.clone();
        let term = match scores.terms.get(h.term as usize) {
            Some(t) => t.text.clone(),
            None => scores
                .value_terms
                .get(h.term as usize - scores.terms.len())
                .cloned()
                .unwrap_or_default(),
        };
        Match {
            term,
            target: match h.field {
                Field::TableName => MatchTarget::TableName,
                Field::TableDescription => MatchTarget::TableDescription,
                Field::Column(c) => MatchTarget::Column(col(c)),
                Field::ColumnDescription(c) => MatchTarget::ColumnDescription(col(c)),
                Field::Value(c) => MatchTarget::Value { column: col(c) },
            },
            kind: match h.via {
                Via::Word => MatchKind::Word,
                Via::Stem => MatchKind::Stem,
                Via::Synonym => MatchKind::Synonym,
                Via::Phrase => MatchKind::Phrase,
                Via::Agent => MatchKind::Derived,
                Via::Prefix => MatchKind::Abbreviation,
                Via::Year => MatchKind::Year,
                Via::Value => MatchKind::Value,
            },
            strength: f64::from(h.gain),
        }
    }
}
