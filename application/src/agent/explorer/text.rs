//! Words: splitting identifiers and questions, singular forms, stems, stop words, abbreviations and a small
//! thesaurus of words a general reader treats as the same thing. English only; no knowledge of any one schema.

use rust_stemmers::{Algorithm, Stemmer};

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

const IRREGULAR: &[(&str, &str)] = &[
    ("people", "person"),
    ("men", "man"),
    ("women", "woman"),
    ("children", "child"),
    ("feet", "foot"),
    ("teeth", "tooth"),
    ("mice", "mouse"),
    ("geese", "goose"),
    ("criteria", "criterion"),
    ("phenomena", "phenomenon"),
    ("indices", "index"),
    ("vertices", "vertex"),
    ("matrices", "matrix"),
    ("analyses", "analysis"),
    ("theses", "thesis"),
    ("crises", "crisis"),
    ("leaves", "leaf"),
    ("wives", "wife"),
    ("lives", "life"),
    ("knives", "knife"),
    ("halves", "half"),
    ("shelves", "shelf"),
    ("movies", "movie"),
    ("series", "series"),
    ("species", "species"),
    ("news", "news"),
    ("statuses", "status"),
    ("buses", "bus"),
];

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

/// Irregular past forms and their verb: "won" -> win, so that `winner` can be found from it.
const IRREGULAR_VERBS: &[(&str, &str)] = &[
    ("won", "win"),
    ("sang", "sing"),
    ("sung", "sing"),
    ("taught", "teach"),
    ("wrote", "write"),
    ("written", "write"),
    ("bought", "buy"),
    ("sold", "sell"),
    ("paid", "pay"),
    ("made", "make"),
    ("built", "build"),
    ("held", "hold"),
    ("led", "lead"),
    ("ran", "run"),
    ("drove", "drive"),
    ("driven", "drive"),
    ("gave", "give"),
    ("took", "take"),
    ("taken", "take"),
    ("went", "go"),
    ("gone", "go"),
    ("saw", "see"),
    ("seen", "see"),
    ("met", "meet"),
    ("found", "find"),
    ("began", "begin"),
    ("begun", "begin"),
    ("flew", "fly"),
    ("flown", "fly"),
    ("grew", "grow"),
    ("grown", "grow"),
    ("knew", "know"),
    ("known", "know"),
    ("chose", "choose"),
    ("chosen", "choose"),
    ("spoke", "speak"),
    ("spoken", "speak"),
    ("spent", "spend"),
    ("lost", "lose"),
    ("left", "leave"),
    ("brought", "bring"),
    ("thought", "think"),
    ("sent", "send"),
    ("kept", "keep"),
    ("told", "tell"),
    ("fought", "fight"),
    ("caught", "catch"),
    ("stood", "stand"),
    ("sat", "sit"),
    ("hit", "hit"),
    ("shot", "shoot"),
    ("hung", "hang"),
    ("dealt", "deal"),
    ("lent", "lend"),
    ("rode", "ride"),
    ("ridden", "ride"),
    ("threw", "throw"),
    ("thrown", "throw"),
    ("drew", "draw"),
    ("drawn", "draw"),
    ("directed", "direct"),
];

fn base_verb(word: &str) -> Option<&'static str> {
    IRREGULAR_VERBS
        .iter()
        .find(|(past, _)| *past == word)
        .map(|(_, base)| *base)
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
    if let Some((_, s)) = IRREGULAR.iter().find(|(p, _)| *p == word) {
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

/// Words that never name a table or column: articles, pronouns, prepositions, auxiliaries. The index skips them.
pub(crate) fn is_function_word(w: &str) -> bool {
    const WORDS: &[&str] = &[
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "along",
        "also",
        "among",
        "an",
        "and",
        "another",
        "any",
        "anyone",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "done",
        "down",
        "during",
        "each",
        "either",
        "else",
        "ever",
        "every",
        "exactly",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "may",
        "me",
        "might",
        "more",
        "most",
        "much",
        "must",
        "my",
        "neither",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "or",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "shall",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "whatever",
        "when",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "yet",
        "you",
        "your",
        "yours",
        "s",
        "t",
        "per",
        "via",
        "etc",
        "e",
        "g",
        "ie",
    ];
    WORDS.contains(&w)
}

/// Words a question uses that say nothing about which table: function words and the verbs and fillers of a
/// request ("show me", "list all", "the corresponding ones").
pub(crate) fn is_stopword(w: &str) -> bool {
    const REQUEST: &[&str] = &[
        "find",
        "get",
        "give",
        "given",
        "know",
        "let",
        "list",
        "many",
        "one",
        "ones",
        "only",
        "other",
        "others",
        "please",
        "return",
        "show",
        "tell",
        "want",
        "display",
        "provide",
        "retrieve",
        "respectively",
        "corresponding",
        "thing",
        "things",
        "including",
        "include",
        "includes",
        "like",
    ];
    is_function_word(w) || REQUEST.contains(&w)
}

/// Abbreviations found in column and table names, with what they stand for.
pub(crate) fn expand_abbreviation(token: &str) -> &'static [&'static str] {
    match token {
        "qty" | "qnty" => &["quantity"],
        "amt" => &["amount"],
        "num" | "nbr" | "no" | "nr" => &["number"],
        "cnt" => &["count"],
        "dob" => &["birth", "date"],
        "desc" | "descr" => &["description"],
        "dept" => &["department"],
        "emp" | "empl" => &["employee"],
        "addr" => &["address"],
        "cust" => &["customer"],
        "prod" => &["product"],
        "org" => &["organization"],
        "info" => &["information"],
        "yr" => &["year"],
        "pct" | "perc" => &["percent"],
        "avg" => &["average"],
        "lat" => &["latitude"],
        "lng" | "lon" => &["longitude"],
        "mgr" => &["manager"],
        "acct" | "acc" => &["account"],
        "txn" | "trx" => &["transaction"],
        "loc" => &["location"],
        "pos" => &["position"],
        "dt" => &["date"],
        "ts" => &["timestamp"],
        "nm" => &["name"],
        "stu" => &["student"],
        "prof" => &["professor"],
        "fname" => &["first", "name"],
        "lname" => &["last", "name"],
        "tel" => &["telephone"],
        "ref" => &["reference"],
        "max" => &["maximum"],
        "min" => &["minimum"],
        "tot" => &["total"],
        "val" => &["value"],
        "pop" => &["population"],
        "eval" => &["evaluation"],
        "perf" => &["performance"],
        "govt" | "gov" => &["government"],
        "univ" => &["university"],
        "temp" => &["temperature"],
        "hr" | "hrs" => &["hour"],
        "mins" => &["minute"],
        "sec" | "secs" => &["second"],
        "cat" => &["category"],
        "reg" => &["registration"],
        "stmt" => &["statement"],
        "msg" => &["message"],
        "img" => &["image"],
        "doc" => &["document"],
        "pic" => &["picture"],
        "ppl" => &["people"],
        "res" => &["result"],
        "sched" => &["schedule"],
        "mfr" | "mfg" => &["manufacturer"],
        "std" => &["standard"],
        "intl" => &["international"],
        "natl" => &["national"],
        _ => &[],
    }
}

/// Groups of words (singular forms) that a question may use for one another.
const THESAURUS: &[&[&str]] = &[
    &["age", "old", "older", "oldest", "young", "younger", "youngest", "aged"],
    &["birth", "born", "birthday"],
    &["country", "nation"],
    &["maker", "manufacturer", "producer", "builder"],
    &["salary", "wage", "earn", "earning", "pay", "paid"],
    &["movie", "film"],
    &["song", "track"],
    &["teacher", "instructor", "lecturer"],
    &["employee", "staff", "worker"],
    &["company", "firm", "business", "enterprise"],
    &["price", "cost"],
    &["revenue", "income", "earning"],
    &["city", "town"],
    &["shop", "store"],
    &["customer", "client"],
    &["purchase", "buy", "bought", "order"],
    &["sale", "sell", "sold"],
    &["job", "occupation", "position"],
    &["hire", "employ", "employed", "hiring"],
    &["start", "begin", "began", "beginning"],
    &["end", "finish", "finished"],
    &["car", "automobile", "vehicle"],
    &["phone", "telephone"],
    &["email", "mail"],
    &["place", "location"],
    &["weight", "heavy", "heavier", "heaviest"],
    &["height", "tall", "taller", "tallest"],
    &[
        "population",
        "populous",
        "populated",
        "person",
        "inhabitant",
        "resident",
    ],
    &["capacity", "seat", "seating"],
    &["gender", "sex"],
    &["kid", "child"],
    &["money", "amount"],
    &["author", "writer", "wrote", "written"],
    &["airport", "airfield"],
    &["plane", "aircraft", "airplane"],
    &["ship", "vessel"],
    &["doctor", "physician"],
    &["address", "live", "lived", "living", "reside", "located"],
    &["illness", "disease"],
];

/// Other words a question may mean by `lemma`, singular forms, never `lemma` itself.
pub(crate) fn synonyms(lemma: &str) -> impl Iterator<Item = &'static str> + '_ {
    THESAURUS
        .iter()
        .filter(move |group| group.contains(&lemma))
        .flat_map(|group| group.iter().copied())
        .filter(move |w| *w != lemma)
}

/// A four-digit number a question may use as a year.
pub(crate) fn is_year(w: &str) -> bool {
    w.len() == 4 && w.parse::<u32>().is_ok_and(|y| (1000..=2199).contains(&y))
}

#[cfg(test)]
mod tests {
    use super::*;

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
