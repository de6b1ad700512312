//! What the explorer precomputes once per catalog: an inverted index from word forms to the places they occur
//! (table names, column names, descriptions, sampled values), the namespaces, and the join graph (declared
//! foreign keys plus joins inferred from column names).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::lexicon::{expand_abbreviation, is_function_word};
use super::text::{split_identifier, split_text, Normalizer};
use super::Tuning;
use crate::agent::catalog::{CatalogSnapshot, CatalogTable};

/// Where a word occurs in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    TableName,
    TableDescription,
    Column(u32),
    ColumnDescription(u32),
    /// A word inside a sampled value of the column.
    Value(u32),
}

impl Field {
    /// How much a match here says about the table.
    pub fn weight(self, tuning: &Tuning) -> f32 {
        match self {
            Field::TableName => tuning.table_name_weight,
            Field::Column(_) => 1.0,
            Field::Value(_) => tuning.value_weight,
            Field::TableDescription => tuning.description_weight,
            Field::ColumnDescription(_) => tuning.column_description_weight,
        }
    }

    pub fn column(self) -> Option<u32> {
        match self {
            Field::Column(c) | Field::ColumnDescription(c) | Field::Value(c) => Some(c),
            Field::TableName | Field::TableDescription => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Posting {
    pub table: u32,
    pub field: Field,
    /// 1 for the word itself; less for a word found by splitting a compound or expanding an abbreviation.
    pub quality: f32,
}

/// An edge of the join graph: `columns` of `from` equal `to_columns` of `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edge {
    pub from: u32,
    pub columns: Vec<u32>,
    pub to: u32,
    pub to_columns: Vec<u32>,
    /// Found by column names rather than declared.
    pub inferred: bool,
}

pub(crate) struct Index {
    pub by_lemma: HashMap<String, Vec<Posting>>,
    pub by_light: HashMap<String, Vec<Posting>>,
    pub by_stem: HashMap<String, Vec<Posting>>,
    /// Multi-word names by their words' light stems (see [`phrase_key`]).
    pub by_phrase: HashMap<String, Vec<Posting>>,
    /// Whole sampled values, lowercased: value -> (table, column).
    pub values: HashMap<String, Vec<(u32, u32)>>,
    /// Longest sampled value in words: how long a question n-gram may be to match one.
    pub max_value_words: usize,
    /// Columns holding dates or years, per table.
    pub date_columns: Vec<Vec<u32>>,
    pub namespace_of: Vec<u32>,
    pub namespace_count: usize,
    pub edges: Vec<Edge>,
    /// Per table: (neighbour, edge index), sorted by neighbour.
    pub adjacency: Vec<Vec<(u32, u32)>>,
}

impl Index {
    pub fn build(snapshot: &CatalogSnapshot, norm: &Normalizer) -> Self {
        let tables = &snapshot.tables;
        let vocabulary = vocabulary(tables);
        let mut ix = Index {
            by_lemma: HashMap::new(),
            by_light: HashMap::new(),
            by_stem: HashMap::new(),
            by_phrase: HashMap::new(),
            values: HashMap::new(),
            max_value_words: 0,
            date_columns: Vec::with_capacity(tables.len()),
            namespace_of: Vec::with_capacity(tables.len()),
            namespace_count: 0,
            edges: Vec::new(),
            adjacency: vec![Vec::new(); tables.len()],
        };
        let mut namespaces: HashMap<String, u32> = HashMap::new();
        for (t, table) in tables.iter().enumerate() {
            let t = t as u32;
            let ns = table.name.namespace().to_lowercase();
            let next = namespaces.len() as u32;
            ix.namespace_of.push(*namespaces.entry(ns).or_insert(next));

            let name_words = identifier_words(&table.name.table, &vocabulary);
            ix.add_words(norm, t, Field::TableName, &name_words);
            ix.add_phrase(norm, t, Field::TableName, &table.name.table);
            if let Some(d) = &table.description {
                ix.add_words(norm, t, Field::TableDescription, &text_words(d));
            }
            let mut dates = Vec::new();
            for (c, col) in table.columns.iter().enumerate() {
                let c = c as u32;
                let words = identifier_words(&col.name, &vocabulary);
                if is_date_like(&col.data_type, &words) {
                    dates.push(c);
                }
                ix.add_words(norm, t, Field::Column(c), &words);
                ix.add_phrase(norm, t, Field::Column(c), &col.name);
                if let Some(d) = &col.description {
                    ix.add_words(norm, t, Field::ColumnDescription(c), &text_words(d));
                }
                for v in &col.sample_values {
                    let key = v.trim().to_lowercase();
                    if key.is_empty() {
                        continue;
                    }
                    let words = text_words(&key);
                    ix.max_value_words = ix.max_value_words.max(words.len());
                    ix.values.entry(key).or_default().push((t, c));
                    ix.add_words(norm, t, Field::Value(c), &words);
                }
            }
            ix.date_columns.push(dates);
        }
        ix.namespace_count = namespaces.len();
        for list in ix.values.values_mut() {
            list.dedup();
        }
        ix.build_joins(tables, norm);
        ix
    }

    fn add_words(&mut self, norm: &Normalizer, table: u32, field: Field, words: &[(String, f32)]) {
        for (w, quality) in words {
            if is_function_word(w) {
                continue;
            }
            let word = norm.word(w);
            let posting = Posting {
                table,
                field,
                quality: *quality,
            };
            push_best(self.by_lemma.entry(word.lemma).or_default(), posting);
            push_best(self.by_light.entry(word.light).or_default(), posting);
            push_best(self.by_stem.entry(word.stem).or_default(), posting);
        }
    }

    /// A name of two words or more, also by each pair of adjacent words in it (quality 0.8).
    fn add_phrase(&mut self, norm: &Normalizer, table: u32, field: Field, name: &str) {
        let parts: Vec<String> = split_identifier(name)
            .into_iter()
            .filter(|w| !is_function_word(w) && !w.chars().all(|c| c.is_ascii_digit()))
            .map(|w| norm.word(&w).light)
            .collect();
        if parts.len() < 2 {
            return;
        }
        let whole = Posting {
            table,
            field,
            quality: 1.0,
        };
        push_best(
            self.by_phrase
                .entry(phrase_key(parts.iter().map(String::as_str)))
                .or_default(),
            whole,
        );
        if parts.len() > 2 {
            for pair in parts.windows(2) {
                let part = Posting { quality: 0.8, ..whole };
                push_best(
                    self.by_phrase
                        .entry(phrase_key(pair.iter().map(String::as_str)))
                        .or_default(),
                    part,
                );
            }
        }
    }

    fn build_joins(&mut self, tables: &[CatalogTable], norm: &Normalizer) {
        let mut seen: HashSet<(u32, Vec<u32>, u32, Vec<u32>)> = HashSet::new();
        let col_index = |t: usize, name: &str| {
            tables[t]
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
                .map(|c| c as u32)
        };
        // Declared foreign keys.
        for (t, table) in tables.iter().enumerate() {
            for fk in &table.foreign_keys {
                let Some(to) = tables.iter().position(|o| o.name.matches(&fk.references)) else {
                    continue;
                };
                let from_cols: Option<Vec<u32>> = fk.columns.iter().map(|c| col_index(t, c)).collect();
                let mut to_cols: Option<Vec<u32>> = fk.referenced_columns.iter().map(|c| col_index(to, c)).collect();
                if fk.referenced_columns.is_empty() {
                    to_cols = Some(pk_columns(&tables[to]));
                }
                let (Some(from_cols), Some(to_cols)) = (from_cols, to_cols) else {
                    continue;
                };
                if from_cols.is_empty() || from_cols.len() != to_cols.len() {
                    continue;
                }
                self.add_edge(&mut seen, t as u32, from_cols, to as u32, to_cols, false);
            }
        }
        // Inferred within a namespace: `customer_id` -> customers' single-column key, or a column named exactly as
        // another table's single-column key ending in id/key/code/number.
        let mut by_ns: HashMap<u32, Vec<u32>> = HashMap::new();
        for (t, ns) in self.namespace_of.iter().enumerate() {
            by_ns.entry(*ns).or_default().push(t as u32);
        }
        let single_pk: Vec<Option<u32>> = tables
            .iter()
            .map(|t| match pk_columns(t).as_slice() {
                [c] => Some(*c),
                _ => None,
            })
            .collect();
        let table_lemma: Vec<String> = tables
            .iter()
            .map(|t| {
                split_identifier(&t.name.table)
                    .iter()
                    .map(|w| norm.word(w).lemma)
                    .collect::<Vec<_>>()
                    .join("_")
            })
            .collect();
        let mut namespaces: Vec<_> = by_ns.into_iter().collect();
        namespaces.sort();
        for (_, members) in namespaces {
            // Tables with a single-column key, by that key's name and by their own name (when the key is an id).
            let mut by_key_name: HashMap<String, Vec<u32>> = HashMap::new();
            let mut by_table_name: HashMap<&str, Vec<u32>> = HashMap::new();
            for &b in &members {
                let Some(pk) = single_pk[b as usize] else { continue };
                let pk_name = &tables[b as usize].columns[pk as usize].name;
                by_key_name.entry(pk_name.to_lowercase()).or_default().push(b);
                if matches!(split_identifier(pk_name).last().map(String::as_str), Some("id" | "key")) {
                    by_table_name
                        .entry(table_lemma[b as usize].as_str())
                        .or_default()
                        .push(b);
                }
            }
            for &a in &members {
                for (c, col) in tables[a as usize].columns.iter().enumerate() {
                    let parts = split_identifier(&col.name);
                    let Some(last) = parts.last() else { continue };
                    if !matches!(last.as_str(), "id" | "key" | "code" | "number" | "no" | "num") || parts.len() < 2 {
                        continue;
                    }
                    let owner: String = parts[..parts.len() - 1]
                        .iter()
                        .map(|w| norm.word(w).lemma)
                        .collect::<Vec<_>>()
                        .join("_");
                    let same_name = by_key_name.get(&col.name.to_lowercase()).into_iter().flatten();
                    let named_after = by_table_name.get(owner.as_str()).into_iter().flatten();
                    let mut targets: Vec<u32> = same_name.chain(named_after).copied().filter(|&b| b != a).collect();
                    targets.sort_unstable();
                    targets.dedup();
                    for b in targets {
                        let Some(pk) = single_pk[b as usize] else { continue };
                        let pk_name = &tables[b as usize].columns[pk as usize].name;
                        // Two tables keyed by the same name: one edge, from the later to the earlier.
                        let is_own_key =
                            single_pk[a as usize] == Some(c as u32) && pk_name.eq_ignore_ascii_case(&col.name);
                        if !(is_own_key && a > b) {
                            self.add_edge(&mut seen, a, vec![c as u32], b, vec![pk], true);
                        }
                    }
                }
            }
        }
        for list in &mut self.adjacency {
            list.sort_unstable();
            list.dedup_by_key(|(n, _)| *n);
        }
    }

    fn add_edge(
        &mut self,
        seen: &mut HashSet<(u32, Vec<u32>, u32, Vec<u32>)>,
        from: u32,
        columns: Vec<u32>,
        to: u32,
        to_columns: Vec<u32>,
        inferred: bool,
    ) {
        if from == to
            || seen.contains(&(to, to_columns.clone(), from, columns.clone()))
            || !seen.insert((from, columns.clone(), to, to_columns.clone()))
        {
            return;
        }
        let e = self.edges.len() as u32;
        self.adjacency[from as usize].push((to, e));
        self.adjacency[to as usize].push((from, e));
        self.edges.push(Edge {
            from,
            columns,
            to,
            to_columns,
            inferred,
        });
    }
}

/// The key of a phrase: its words' light stems joined by spaces.
pub(crate) fn phrase_key<'a>(words: impl Iterator<Item = &'a str>) -> String {
    words.collect::<Vec<_>>().join(" ")
}

/// Keeps one posting per (table, field): the best.
fn push_best(list: &mut Vec<Posting>, p: Posting) {
    if let Some(last) = list
        .iter_mut()
        .rev()
        .take(4)
        .find(|q| q.table == p.table && q.field == p.field)
    {
        last.quality = last.quality.max(p.quality);
    } else {
        list.push(p);
    }
}

fn pk_columns(table: &CatalogTable) -> Vec<u32> {
    table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_primary_key)
        .map(|(i, _)| i as u32)
        .collect()
}

fn is_date_like(data_type: &str, words: &[(String, f32)]) -> bool {
    let t = data_type.to_ascii_lowercase();
    t.contains("date")
        || t.contains("time")
        || words
            .iter()
            .any(|(w, _)| matches!(w.as_str(), "year" | "date" | "yr" | "dt" | "time" | "timestamp"))
}

/// Every identifier part of the catalog with at least three letters: the words compounds are split into.
fn vocabulary(tables: &[CatalogTable]) -> BTreeSet<String> {
    let mut v = BTreeSet::new();
    for t in tables {
        let names = std::iter::once(t.name.table.as_str()).chain(t.columns.iter().map(|c| c.name.as_str()));
        for n in names {
            v.extend(
                split_identifier(n)
                    .into_iter()
                    .filter(|w| w.len() >= 3 && w.chars().all(char::is_alphabetic)),
            );
        }
    }
    v
}

/// The words of an identifier with their quality: its parts (1.0), the expansions of abbreviated parts and the
/// halves of a compound made of two catalog words, like `countrylanguage` (0.9).
pub(crate) fn identifier_words(name: &str, vocabulary: &BTreeSet<String>) -> Vec<(String, f32)> {
    let parts = split_identifier(name);
    let mut out: Vec<(String, f32)> = Vec::with_capacity(parts.len() + 2);
    for p in &parts {
        out.push((p.clone(), 1.0));
        out.extend(expand_abbreviation(p).iter().map(|w| ((*w).to_string(), 0.9)));
        if let Some((a, b)) = split_compound(p, vocabulary) {
            out.push((a, 0.9));
            out.push((b, 0.9));
        }
    }
    out
}

/// `countrylanguage` -> (`country`, `language`) when both halves (three letters or more) are catalog words;
/// the most balanced split wins.
fn split_compound(word: &str, vocabulary: &BTreeSet<String>) -> Option<(String, String)> {
    if word.len() < 7 || !word.is_ascii() {
        return None;
    }
    (3..=word.len() - 3)
        .filter(|&i| vocabulary.contains(&word[..i]) && vocabulary.contains(&word[i..]))
        .min_by_key(|&i| (word.len() / 2).abs_diff(i))
        .map(|i| (word[..i].to_string(), word[i..].to_string()))
}

fn text_words(s: &str) -> Vec<(String, f32)> {
    split_text(s).into_iter().map(|w| (w, 1.0)).collect()
}
