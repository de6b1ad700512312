//! The English the explorer knows: irregular plurals and verbs, function words, abbreviations found in names,
//! and a small thesaurus. General language only; nothing here is about any one schema.

/// Plurals that do not follow the rules, and their singular.
#[rustfmt::skip]
pub(crate) const IRREGULAR_PLURALS: &[(&str, &str)] = &[
    ("people", "person"), ("men", "man"), ("women", "woman"), ("children", "child"), ("feet", "foot"),
    ("teeth", "tooth"), ("mice", "mouse"), ("geese", "goose"), ("criteria", "criterion"),
    ("phenomena", "phenomenon"), ("indices", "index"), ("vertices", "vertex"), ("matrices", "matrix"),
    ("analyses", "analysis"), ("theses", "thesis"), ("crises", "crisis"), ("leaves", "leaf"), ("wives", "wife"),
    ("lives", "life"), ("knives", "knife"), ("halves", "half"), ("shelves", "shelf"), ("movies", "movie"),
    ("series", "series"), ("species", "species"), ("news", "news"), ("statuses", "status"), ("buses", "bus"),
];

/// Irregular past forms and their verb: "won" -> win, so that `winner` can be found from it.
#[rustfmt::skip]
const IRREGULAR_VERBS: &[(&str, &str)] = &[
    ("won", "win"), ("sang", "sing"), ("sung", "sing"), ("taught", "teach"), ("wrote", "write"),
    ("written", "write"), ("bought", "buy"), ("sold", "sell"), ("paid", "pay"), ("made", "make"), ("built", "build"),
    ("held", "hold"), ("led", "lead"), ("ran", "run"), ("drove", "drive"), ("driven", "drive"), ("gave", "give"),
    ("took", "take"), ("taken", "take"), ("went", "go"), ("gone", "go"), ("saw", "see"), ("seen", "see"),
    ("met", "meet"), ("found", "find"), ("began", "begin"), ("begun", "begin"), ("flew", "fly"), ("flown", "fly"),
    ("grew", "grow"), ("grown", "grow"), ("knew", "know"), ("known", "know"), ("chose", "choose"),
    ("chosen", "choose"), ("spoke", "speak"), ("spoken", "speak"), ("spent", "spend"), ("lost", "lose"),
    ("left", "leave"), ("brought", "bring"), ("thought", "think"), ("sent", "send"), ("kept", "keep"),
    ("told", "tell"), ("fought", "fight"), ("caught", "catch"), ("stood", "stand"), ("sat", "sit"),
    ("shot", "shoot"), ("hung", "hang"), ("dealt", "deal"), ("lent", "lend"), ("rode", "ride"), ("ridden", "ride"),
    ("threw", "throw"), ("thrown", "throw"), ("drew", "draw"), ("drawn", "draw"),
];

pub(crate) fn base_verb(word: &str) -> Option<&'static str> {
    IRREGULAR_VERBS
        .iter()
        .find(|(past, _)| *past == word)
        .map(|(_, base)| *base)
}

/// Words that never name a table or column: articles, pronouns, prepositions, auxiliaries. The index skips them.
pub(crate) fn is_function_word(w: &str) -> bool {
    #[rustfmt::skip]
    const WORDS: &[&str] = &[
        "a", "about", "above", "after", "again", "against", "all", "along", "also", "among", "an", "and", "another",
        "any", "anyone", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
        "but", "by", "can", "could", "did", "do", "does", "doing", "done", "down", "during", "each", "either",
        "else", "ever", "every", "exactly", "for", "from", "further", "had", "has", "have", "having", "he", "her",
        "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "may",
        "me", "might", "more", "most", "much", "must", "my", "neither", "nor", "not", "of", "off", "on", "once",
        "or", "our", "ours", "out", "over", "own", "same", "shall", "she", "should", "so", "some", "such", "than",
        "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
        "through", "to", "too", "under", "until", "up", "upon", "us", "very", "was", "we", "were", "what",
        "whatever", "when", "where", "whether", "which", "while", "who", "whom", "whose", "why", "will", "with",
        "within", "without", "would", "yet", "you", "your", "yours", "s", "t", "per", "via", "etc", "e", "g", "ie",
    ];
    WORDS.contains(&w)
}

/// Words a question uses that say nothing about which table: function words and the verbs and fillers of a
/// request ("show me", "list all", "the corresponding ones").
pub(crate) fn is_stopword(w: &str) -> bool {
    #[rustfmt::skip]
    const REQUEST: &[&str] = &[
        "find", "get", "give", "given", "know", "let", "list", "many", "one", "ones", "only", "other", "others",
        "please", "return", "show", "tell", "want", "display", "provide", "retrieve", "respectively",
        "corresponding", "thing", "things", "including", "include", "includes", "like",
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
#[rustfmt::skip]
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
    &["population", "populous", "populated", "person", "inhabitant", "resident"],
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
