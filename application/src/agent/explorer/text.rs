//! Words: splitting identifiers and questions, singular forms, stems, doers of verbs and acronyms.

use rust_stemmers::{Algorithm, Stemmer};

use super::lexicon::{base_verb, IRREGULAR_PLURALS};

/// A normalised word: lowercase surface form, singular form (`lemma`), the lemma without its inflection
/// (`light`: hiring, hired, hire -> hir) and its Snowball stem, which also strips derivations (department ->
/// depart) and so joins more, and more wrongly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: String,
    pub lemma: String,
    pub light: String,
    pub stem: String,
}

pub(crate) struct Normalizer {
    stemmer: Stemmer,
}

impl Normalizer {
    pub fn new() -> Self {
        Self {
            stemmer: Stemmer::create(Algorithm::English),
        }
    }

    pub fn word(&self, text: &str) -> Word {
        let text = text.to_lowercase();
        let lemma = base_verb(&text).map_or_else(|| singular(&text), str::to_string);
        let stem = self.stemmer.stem(&lemma).into_owned();
        let light = light_stem(&lemma);
        Word {
            text,
            lemma,
            light,
            stem,
        }
    }
}

/// Splits an identifier into lowercase parts: on anything that is not a letter or digit, between a lower-case
/// letter and an upper-case one (`customerId`), before the last capital of a capital run (`HTMLParser` -> html,
/// parser) and between letters and digits (`address2`).
pub(crate) fn split_identifier(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for chunk in s.split(|c: char| !c.is_alphanumeric()).filter(|c| !c.is_empty()) {
        let chars: Vec<char> = chunk.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (prev, cur) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = (prev.is_lowercase() && cur.is_uppercase())
                || (prev.is_uppercase() && cur.is_uppercase() && next_lower)
                || (prev.is_alphabetic() && cur.is_numeric())
                || (prev.is_numeric() && cur.is_alphabetic());
            if boundary {
                parts.push(chars[start..i].iter().collect::<String>().to_lowercase());
                start = i;
            }
        }
        parts.push(chars[start..].iter().collect::<String>().to_lowercase());
    }
    parts
}

/// Splits free text (a question, a description) into lowercase words; a possessive `'s` is dropped.
pub(crate) fn split_text(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in s.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}')) {
        let w = raw.trim_matches(|c| c == '\'' || c == '\u{2019}');
        let w = w
            .strip_suffix("'s")
            .or_else(|| w.strip_suffix("\u{2019}s"))
            .unwrap_or(w);
        for part in w.split(['\'', '\u{2019}']).filter(|p| !p.is_empty()) {
            out.push(part.to_lowercase());
        }
    }
    out
}

/// Strips an inflection (-ing, -ed, -es, -s, a final -e) and undoubles the consonant before it, keeping at
/// least three letters: hiring, hired, hire -> hir; enrolled, enrol -> enrol; departing -> depart, department stays.
pub(crate) fn light_stem(lemma: &str) -> String {
    if !lemma.is_ascii() {
        return lemma.to_string();
    }
    let mut w = lemma;
    for suffix in ["ing", "ed", "es", "s", "e"] {
        if let Some(rest) = w.strip_suffix(suffix) {
            if rest.len() >= 3 {
                w = rest;
                break;
            }
        }
    }
    let b = w.as_bytes();
    let n = b.len();
    if n >= 4 && b[n - 1] == b[n - 2] && !b"aeiousl".contains(&b[n - 1]) {
        return w[..n - 1].to_string();
    }
    if n >= 4 && b[n - 1] == b'l' && b[n - 2] == b'l' {
        return w[..n - 1].to_string();
    }
    w.to_string()
}

/// Nouns of the one who does what `lemma` says, and the verb of such a noun: win -> winner, visit -> visitor,
/// manage -> manager; teacher -> teach.
pub(crate) fn agent_forms(lemma: &str) -> Vec<String> {
    let mut out = Vec::new();
    if lemma.len() < 3 || !lemma.is_ascii() {
        return out;
    }
    if let Some(base) = lemma.strip_suffix("er").or_else(|| lemma.strip_suffix("or")) {
        if base.len() >= 3 {
            out.push(base.to_string());
            out.push(format!("{base}e"));
            let b = base.as_bytes();
            if b.len() >= 4 && b[b.len() - 1] == b[b.len() - 2] {
                out.push(base[..base.len() - 1].to_string());
            }
        }
        return out;
    }
    if lemma.ends_with('e') {
        out.push(format!("{lemma}r"));
    } else {
        out.push(format!("{lemma}er"));
        out.push(format!("{lemma}or"));
        let b = lemma.as_bytes();
        let vowel = |c: u8| b"aeiou".contains(&c);
        let n = b.len();
        // win -> winner: a short word ending consonant-vowel-consonant doubles its last letter.
        if n <= 4 && !vowel(b[n - 1]) && vowel(b[n - 2]) && !vowel(b[n - 3]) && !b"wxy".contains(&b[n - 1]) {
            out.push(format!("{lemma}{}er", b[n - 1] as char));
        }
    }
    out
}

/// Initials of consecutive words: "miles per gallon" -> mpg.
pub(crate) fn acronym(words: &[String]) -> String {
    words.iter().filter_map(|w| w.chars().next()).collect()
}

/// The singular of an English noun by rule (plus the common irregular ones); other words come back unchanged.
pub(crate) fn singular(word: &str) -> String {
    if let Some((_, s)) = IRREGULAR_PLURALS.iter().find(|(p, _)| *p == word) {
        return (*s).to_string();
    }
    let n = word.len();
    if n <= 3 || !word.is_ascii() {
        return word.to_string();
    }
    for keep in ["ss", "us", "is", "ous", "ics"] {
        if word.ends_with(keep) {
            return word.to_string();
        }
    }
    if let Some(stem) = word.strip_suffix("ies") {
        if n > 4 {
            return format!("{stem}y");
        }
    }
    for suffix in ["sses", "shes", "ches", "xes", "zzes"] {
        if word.ends_with(suffix) {
            return word[..n - 2].to_string();
        }
    }
    if let Some(stem) = word.strip_suffix('s') {
        return stem.to_string();
    }
    word.to_string()
}

/// A four-digit number a question may use as a year.
pub(crate) fn is_year(w: &str) -> bool {
    w.len() == 4 && w.parse::<u32>().is_ok_and(|y| (1000..=2199).contains(&y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::explorer::lexicon::{expand_abbreviation, synonyms};

    #[test]
    fn identifiers_split_on_case_digits_and_separators() {
        assert_eq!(split_identifier("customer_id"), ["customer", "id"]);
        assert_eq!(split_identifier("CustomerID"), ["customer", "id"]);
        assert_eq!(split_identifier("customerId"), ["customer", "id"]);
        assert_eq!(split_identifier("HTMLParser"), ["html", "parser"]);
        assert_eq!(split_identifier("address2_line"), ["address", "2", "line"]);
        assert_eq!(split_identifier("Home Town"), ["home", "town"]);
        assert_eq!(split_identifier("TV_series"), ["tv", "series"]);
        assert!(split_identifier("__").is_empty());
    }

    #[test]
    fn text_splits_into_lowercase_words_without_possessives() {
        assert_eq!(
            split_text("What is the singer's age, in 2014?"),
            ["what", "is", "the", "singer", "age", "in", "2014"]
        );
        assert_eq!(split_text("'Hello' don't"), ["hello", "don", "t"]);
    }

    #[test]
    fn singulars_follow_english_rules() {
        for (plural, one) in [
            ("singers", "singer"),
            ("countries", "country"),
            ("addresses", "address"),
            ("matches", "match"),
            ("boxes", "box"),
            ("people", "person"),
            ("status", "status"),
            ("analysis", "analysis"),
            ("series", "series"),
            ("bus", "bus"),
            ("famous", "famous"),
            ("id", "id"),
        ] {
            assert_eq!(singular(plural), one, "{plural}");
        }
    }

    #[test]
    fn stems_join_inflections() {
        let n = Normalizer::new();
        assert_eq!(n.word("Enrollments").stem, n.word("enrolment").stem);
        assert_eq!(n.word("hiring").stem, n.word("hire").stem);
        assert_eq!(n.word("Countries").lemma, "country");
        assert_eq!(n.word("won").lemma, "win");
        assert_eq!(n.word("hiring").light, n.word("hire").light);
        assert_eq!(n.word("hired").light, n.word("hire").light);
        assert_eq!(n.word("enrolled").light, n.word("enrol").light);
        assert_eq!(n.word("departing").light, "depart");
        assert_ne!(n.word("department").light, n.word("departing").light);
        assert_eq!(n.word("department").stem, n.word("departing").stem);
        assert!(agent_forms("win").contains(&"winner".to_string()));
        assert!(agent_forms("visit").contains(&"visitor".to_string()));
        assert!(agent_forms("manage").contains(&"manager".to_string()));
        assert!(agent_forms("teacher").contains(&"teach".to_string()));
        assert!(agent_forms("runner").contains(&"run".to_string()));
        assert_eq!(acronym(&["miles".into(), "per".into(), "gallon".into()]), "mpg");
    }

    #[test]
    fn abbreviations_and_synonyms_are_general_words() {
        assert_eq!(expand_abbreviation("qty"), ["quantity"]);
        assert_eq!(expand_abbreviation("dob"), ["birth", "date"]);
        assert!(expand_abbreviation("singer").is_empty());
        let s: Vec<_> = synonyms("oldest").collect();
        assert!(s.contains(&"age"));
        assert!(!s.contains(&"oldest"));
        assert!(is_year("1999") && !is_year("12") && !is_year("99999"));
    }
}
