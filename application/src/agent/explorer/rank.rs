//! Scoring every table against one question: question terms matched through the index (word, stem, synonym,
//! abbreviation prefix), weighted by inverse table frequency, then lifted by the coherence of the table's
//! namespace and by its neighbours in the join graph.

use std::collections::HashMap;

use super::index::phrase_key;
use super::index::{Field, Index, Posting};
use super::lexicon::{is_function_word, is_stopword, synonyms};
use super::text::{acronym, agent_forms, is_year, singular, split_text, Normalizer, Word};
use super::Tuning;

/// How a question term reached a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Word,
    Stem,
    Synonym,
    /// Consecutive question words equal to a whole multi-word name.
    Phrase,
    /// The doer of a verb or the verb of a doer: won -> winner.
    Agent,
    Prefix,
    Year,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TermKind {
    Word,
    /// A four-digit number: matches date-like columns.
    Year,
    /// Adjacent words written as one ("high schoolers" -> highschooler) or the initials of a few (mpg): matched
    /// by form and stem only.
    Joined,
    /// Two or three adjacent content words, matched against multi-word names ("ticket price" -> `ticket_price`).
    Phrase,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Term {
    pub text: String,
    pub lemma: String,
    pub light: String,
    pub stem: String,
    pub weight: f32,
    pub kind: TermKind,
}

impl Term {
    fn new(w: Word, weight: f32, kind: TermKind) -> Self {
        Self {
            text: w.text,
            lemma: w.lemma,
            light: w.light,
            stem: w.stem,
            weight,
            kind,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub table: u32,
    pub term: u32,
    pub field: Field,
    pub via: Via,
    /// Field weight x match quality x term weight x idf: what this hit added to the table.
    pub gain: f32,
}

pub(crate) struct Scores {
    pub terms: Vec<Term>,
    /// Value matches use their own "terms": the matched text.
    pub value_terms: Vec<String>,
    pub own: Vec<f32>,
    pub score: Vec<f32>,
    pub hits: Vec<Hit>,
}

/// Words of a request that only say how to sort ("ordered by", "in descending order").
fn is_sort_phrase(words: &[String], i: usize) -> bool {
    let w = words[i].as_str();
    let next_by = words.get(i + 1).is_some_and(|n| n == "by");
    let prev = i.checked_sub(1).map(|p| words[p].as_str());
    (matches!(w, "order" | "ordered" | "sort" | "sorted" | "rank" | "ranked") && next_by)
        || (w == "order"
            && matches!(
                prev,
                Some("ascending" | "descending" | "alphabetical" | "reverse" | "increasing" | "decreasing")
            ))
        || (w == "order" && words[i.saturating_sub(3)..i].iter().any(|p| p == "in"))
        || matches!(
            w,
            "ascending" | "descending" | "alphabetical" | "alphabetically" | "increasing" | "decreasing"
        )
}

pub(crate) fn terms(question: &str, history: Option<&str>, norm: &Normalizer, tuning: &Tuning) -> Vec<Term> {
    let mut out: Vec<Term> = Vec::new();
    let mut push = |t: Term| match out.iter_mut().find(|o| o.lemma == t.lemma && o.kind == t.kind) {
        Some(o) => o.weight = o.weight.max(t.weight),
        None => out.push(t),
    };
    let sources = std::iter::once((question, 1.0)).chain(history.map(|h| (h, tuning.history_weight)));
    for (text, weight) in sources {
        let words = split_text(text);
        // Runs of content words, broken by function words, numbers and sort phrases.
        let mut runs: Vec<Vec<Word>> = vec![Vec::new()];
        for (i, w) in words.iter().enumerate() {
            let n = norm.word(w);
            let skip = is_stopword(w)
                || is_sort_phrase(&words, i)
                // "listed", "showed": a request verb in the past.
                || (w.ends_with("ed") && is_stopword(&n.light));
            if is_year(w) {
                push(Term::new(n, weight, TermKind::Year));
            } else if !skip && !w.chars().all(|c| c.is_ascii_digit()) {
                if let Some(last) = runs.last_mut() {
                    last.push(n.clone());
                }
                push(Term::new(n, weight, TermKind::Word));
                continue;
            }
            if runs.last().is_some_and(|r| !r.is_empty()) {
                runs.push(Vec::new());
            }
        }
        for run in &runs {
            for pair in run.windows(2) {
                if pair.iter().all(|w| w.text.chars().all(char::is_alphabetic)) {
                    let joined = norm.word(&format!("{}{}", pair[0].text, pair[1].text));
                    push(Term::new(joined, weight * tuning.compound_weight, TermKind::Joined));
                }
            }
            if tuning.phrase_weight > 0.0 {
                for len in 2..=3 {
                    for win in run.windows(len) {
                        let key = phrase_key(win.iter().map(|w| w.light.as_str()));
                        let text = win.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ");
                        push(Term {
                            text,
                            lemma: key.clone(),
                            light: key.clone(),
                            stem: key,
                            weight: weight * tuning.phrase_weight,
                            kind: TermKind::Phrase,
                        });
                    }
                }
            }
        }
        // Initials of three or four words that start and end with content words: "miles per gallon" -> mpg.
        if tuning.acronym_weight > 0.0 {
            for len in 3..=4 {
                for win in words.windows(len) {
                    let content = |w: &String| !is_function_word(w) && w.chars().all(char::is_alphabetic);
                    if content(&win[0])
                        && content(&win[len - 1])
                        && win.iter().all(|w| w.chars().all(char::is_alphabetic))
                    {
                        let a = acronym(win);
                        push(Term {
                            lemma: a.clone(),
                            light: a.clone(),
                            stem: a.clone(),
                            text: a,
                            weight: weight * tuning.acronym_weight,
                            kind: TermKind::Joined,
                        });
                    }
                }
            }
        }
    }
    out
}

/// inverse document frequency over tables, BM25's form.
fn idf(n: usize, df: usize) -> f32 {
    let (n, df) = (n as f32, df as f32);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// Per-term accumulation: the best hit per table.
struct Best {
    gain: Vec<f32>,
    hit: Vec<Option<(Field, Via)>>,
    touched: Vec<u32>,
}

impl Best {
    fn new(n: usize) -> Self {
        Self {
            gain: vec![0.0; n],
            hit: vec![None; n],
            touched: Vec::new(),
        }
    }

    fn offer(&mut self, table: u32, field: Field, via: Via, strength: f32) {
        let t = table as usize;
        if self.hit[t].is_none() {
            self.touched.push(table);
        }
        if self.hit[t].is_none() || strength > self.gain[t] {
            self.gain[t] = strength;
            self.hit[t] = Some((field, via));
        }
    }

    fn offer_all(
        &mut self,
        tuning: &Tuning,
        postings: Option<&Vec<Posting>>,
        via: Via,
        quality: f32,
        fields: fn(Field) -> bool,
    ) {
        for p in postings.into_iter().flatten().filter(|p| fields(p.field)) {
            self.offer(p.table, p.field, via, p.field.weight(tuning) * p.quality * quality);
        }
    }

    fn clear(&mut self) {
        for &t in &self.touched {
            self.gain[t as usize] = 0.0;
            self.hit[t as usize] = None;
        }
        self.touched.clear();
    }
}

pub(crate) fn score(ix: &Index, terms: Vec<Term>, question: &str, tuning: &Tuning) -> Scores {
    let n = ix.namespace_of.len();
    let mut own = vec![0.0f32; n];
    let mut coverage = vec![0.0f32; ix.namespace_count];
    let mut ns_best = vec![0.0f32; ix.namespace_count];
    let mut hits = Vec::new();
    let mut best = Best::new(n);
    let any = |_: Field| true;
    let names = |f: Field| matches!(f, Field::TableName | Field::Column(_));

    let mut apply = |best: &mut Best, term: u32, weight: f32, hits: &mut Vec<Hit>| {
        let w = weight * idf(n, best.touched.len());
        for &t in &best.touched {
            let (field, via) = best.hit[t as usize].unwrap_or((Field::TableName, Via::Word));
            let gain = w * best.gain[t as usize];
            own[t as usize] += gain;
            let ns = ix.namespace_of[t as usize] as usize;
            ns_best[ns] = ns_best[ns].max(gain);
            hits.push(Hit {
                table: t,
                term,
                field,
                via,
                gain,
            });
        }
        for &t in &best.touched {
            let ns = ix.namespace_of[t as usize] as usize;
            coverage[ns] += ns_best[ns];
            ns_best[ns] = 0.0;
        }
        best.clear();
    };

    for (i, term) in terms.iter().enumerate() {
        if term.kind == TermKind::Phrase {
            best.offer_all(tuning, ix.by_phrase.get(&term.lemma), Via::Phrase, 1.0, any);
        } else if term.kind == TermKind::Year {
            for (t, cols) in ix.date_columns.iter().enumerate() {
                if let Some(&c) = cols.first() {
                    best.offer(t as u32, Field::Column(c), Via::Year, tuning.year_quality);
                }
            }
        } else if term.kind == TermKind::Joined {
            best.offer_all(tuning, ix.by_lemma.get(&term.lemma), Via::Word, 1.0, any);
            best.offer_all(
                tuning,
                ix.by_light.get(&term.light),
                Via::Stem,
                tuning.light_quality,
                any,
            );
            best.offer_all(tuning, ix.by_stem.get(&term.stem), Via::Stem, tuning.stem_quality, any);
        } else {
            best.offer_all(tuning, ix.by_lemma.get(&term.lemma), Via::Word, 1.0, any);
            best.offer_all(
                tuning,
                ix.by_light.get(&term.light),
                Via::Stem,
                tuning.light_quality,
                any,
            );
            best.offer_all(tuning, ix.by_stem.get(&term.stem), Via::Stem, tuning.stem_quality, any);
            for s in synonyms(&term.lemma) {
                best.offer_all(tuning, ix.by_lemma.get(s), Via::Synonym, tuning.synonym_quality, any);
            }
            if tuning.agent_quality > 0.0 {
                for f in agent_forms(&term.lemma) {
                    best.offer_all(tuning, ix.by_lemma.get(&f), Via::Agent, tuning.agent_quality, any);
                }
            }
            // A name part that abbreviates the word: `indep` for independence.
            let l = &term.lemma;
            if tuning.prefix_quality > 0.0 && l.is_ascii() && l.len() >= tuning.prefix_min + 2 {
                for k in tuning.prefix_min..=l.len() - 2 {
                    best.offer_all(
                        tuning,
                        ix.by_lemma.get(&l[..k]),
                        Via::Prefix,
                        tuning.prefix_quality,
                        names,
                    );
                }
            }
        }
        apply(&mut best, i as u32, term.weight, &mut hits);
    }

    // Sampled values quoted or named in the question, as n-grams of up to the longest value's length.
    let mut value_terms = Vec::new();
    if !ix.values.is_empty() {
        let words = split_text(question);
        let mut seen: HashMap<String, ()> = HashMap::new();
        for len in (1..=ix.max_value_words.min(words.len())).rev() {
            for start in 0..=words.len() - len {
                let gram = words[start..start + len].join(" ");
                if len == 1 && (is_stopword(&gram) || gram.len() < 2) {
                    continue;
                }
                let Some(cols) = ix.values.get(&gram).or_else(|| ix.values.get(&singular(&gram))) else {
                    continue;
                };
                if seen.insert(gram.clone(), ()).is_some() {
                    continue;
                }
                for &(t, c) in cols {
                    best.offer(
                        t,
                        Field::Value(c),
                        Via::Value,
                        tuning.value_quality * (len as f32).sqrt(),
                    );
                }
                let term = (terms.len() + value_terms.len()) as u32;
                value_terms.push(gram);
                apply(&mut best, term, 1.0, &mut hits);
            }
        }
    }

    let mut score: Vec<f32> = (0..n)
        .map(|t| own[t] + tuning.namespace_weight * coverage[ix.namespace_of[t] as usize])
        .collect();
    if tuning.neighbour_weight > 0.0 {
        let lifted: Vec<f32> = (0..n)
            .map(|t| {
                let mut top = [0.0f32; 2];
                for &(m, _) in &ix.adjacency[t] {
                    let s = own[m as usize];
                    if s > top[0] {
                        top = [s, top[0]];
                    } else if s > top[1] {
                        top[1] = s;
                    }
                }
                tuning.neighbour_weight * (top[0] + top[1])
            })
            .collect();
        for (s, l) in score.iter_mut().zip(lifted) {
            *s += l;
        }
    }
    Scores {
        terms,
        value_terms,
        own,
        score,
        hits,
    }
}
