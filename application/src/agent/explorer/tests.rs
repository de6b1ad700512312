use proptest::prelude::*;

use super::*;
use crate::agent::catalog::{CatalogColumn as Col, CatalogTable as Table, ForeignKey};

fn name(schema: &str, table: &str) -> TableName {
    TableName::new(schema, table)
}

/// A small shop: declared keys on some tables, only naming conventions on others.
fn shop() -> CatalogSnapshot {
    let int = "INTEGER";
    let text = "VARCHAR";
    CatalogSnapshot {
        tables: vec![
            Table::new(name("shop", "customers"), TableKind::Table)
                .rows(1200)
                .column(Col::new("id", int).primary_key())
                .column(Col::new("full_name", text))
                .column(Col::new("email", text))
                .column(Col::new("city", text).values(["Lisbon", "Porto", "New York"]))
                .column(Col::new("dob", "DATE")),
            Table::new(name("shop", "orders"), TableKind::Table)
                .column(Col::new("id", int).primary_key())
                .column(Col::new("customer_id", int))
                .column(Col::new("order_date", "DATE"))
                .column(Col::new("status", text).values(["paid", "shipped", "cancelled"]))
                .column(Col::new("total_amt", "DECIMAL(10,2)")),
            Table::new(name("shop", "order_items"), TableKind::Table)
                .column(Col::new("order_id", int))
                .column(Col::new("product_id", int))
                .column(Col::new("qty", int))
                .foreign_key(ForeignKey::new("product_id", name("shop", "products"), "id")),
            Table::new(name("shop", "products"), TableKind::Table)
                .column(Col::new("id", int).primary_key())
                .column(Col::new("title", text))
                .column(Col::new("category", text).values(["Books", "Toys"])),
            Table::new(name("shop", "stores"), TableKind::SourceTable)
                .column(Col::new("store_id", int).primary_key())
                .column(Col::new("city", text)),
            Table::new(name("hr", "employees"), TableKind::Table)
                .column(Col::new("emp_id", int).primary_key())
                .column(Col::new("first_name", text))
                .column(Col::new("dept_no", int))
                .column(Col::new("hire_date", "DATE"))
                .column(Col::new("salary", "DECIMAL(10,2)")),
            Table::new(name("hr", "departments"), TableKind::Table)
                .column(Col::new("dept_no", int).primary_key())
                .column(Col::new("dept_name", text)),
            Table::new(name("analytics", "monthly_revenue"), TableKind::Analysis)
                .describe("Revenue of paid orders per calendar month")
                .column(Col::new("month", "DATE"))
                .column(Col::new("revenue", "DECIMAL(12,2)")),
        ],
    }
}

fn ranked(e: &Exploration) -> Vec<String> {
    e.tables.iter().map(|t| t.name.to_string()).collect()
}

fn explore(q: &str) -> Exploration {
    Explorer::new(shop()).explore(q, None, Budget::tokens(2000))
}

#[test]
fn obvious_questions_rank_the_right_table_first() {
    for (q, want) in [
        ("How many customers do we have?", "shop.customers"),
        ("List all products in each category", "shop.products"),
        ("Average salary of employees", "hr.employees"),
        ("Show the names of all departments", "hr.departments"),
        ("What was the revenue per month?", "analytics.monthly_revenue"),
        ("Which order items have the largest quantity?", "shop.order_items"),
    ] {
        let e = explore(q);
        assert_eq!(
            ranked(&e).first().map(String::as_str),
            Some(want),
            "{q}: {:?}",
            ranked(&e)
        );
    }
}

#[test]
fn explanations_name_the_matched_terms_and_columns() {
    let e = explore("Which employees were hired after 2020?");
    let top = &e.tables[0];
    assert_eq!(top.name, name("hr", "employees"));
    assert!(top
        .matches
        .iter()
        .any(|m| m.term == "employees" && m.target == MatchTarget::TableName));
    assert!(top
        .matches
        .iter()
        .any(|m| m.kind == MatchKind::Stem && m.target == MatchTarget::Column("hire_date".into())));
    assert!(top.matches.iter().any(|m| m.kind == MatchKind::Year));
    assert!(top.columns.contains(&"hire_date".to_string()));
    assert!(top.columns.contains(&"emp_id".to_string()), "keys are always chosen");
    assert!(top.score >= top.lexical_score);
}

#[test]
fn abbreviations_in_names_match_full_words() {
    let e = explore("total quantity per product");
    let items = e.tables.iter().find(|t| t.name.table == "order_items").unwrap();
    assert!(items
        .matches
        .iter()
        .any(|m| m.term == "quantity" && m.target == MatchTarget::Column("qty".into())));
    let e = explore("customers by date of birth");
    assert_eq!(e.tables[0].name, name("shop", "customers"));
    assert!(e.tables[0].columns.contains(&"dob".to_string()));
}

#[test]
fn a_sampled_value_lifts_its_table_over_a_name_match() {
    // Both tables have a `city` column; only customers has Lisbon among its sampled values.
    let e = explore("Who lives in the city of Lisbon?");
    assert_eq!(e.tables[0].name, name("shop", "customers"), "{:?}", ranked(&e));
    assert!(e.tables[0].matches.iter().any(|m| m.kind == MatchKind::Value
        && m.term == "lisbon"
        && m.target == MatchTarget::Value { column: "city".into() }));
    // Multi-word values match as a phrase.
    let e = explore("customers in new york");
    assert!(e.tables[0]
        .matches
        .iter()
        .any(|m| m.kind == MatchKind::Value && m.term == "new york"));
    // And they show in the context.
    assert!(
        e.context.contains("e.g. 'Lisbon', 'Porto', 'New York'"),
        "{}",
        e.context
    );
}

#[test]
fn joins_are_inferred_from_names_and_declared_keys() {
    let ex = Explorer::new(shop());
    // orders.customer_id -> customers.id, order_items.order_id -> orders.id, employees.dept_no -> departments;
    // order_items.product_id -> products.id is declared.
    assert_eq!(ex.join_count(), 4);
    let e = ex.explore("Which products did customers buy?", None, Budget::tokens(2000));
    let mut hops: Vec<String> = e
        .joins
        .iter()
        .flat_map(|p| &p.steps)
        .map(|s| format!("{}->{}", s.left.table, s.right.table))
        .collect();
    hops.sort();
    assert_eq!(
        hops,
        ["order_items->orders", "order_items->products", "orders->customers"]
    );
    // The bridge tables are in the context even when they did not rank.
    for t in ["customers", "orders", "order_items", "products"] {
        assert!(
            e.context_tables.contains(&name("shop", t)),
            "{t} in {:?}",
            e.context_tables
        );
    }
    assert!(e
        .context
        .contains("-- join (inferred): shop.orders.customer_id = shop.customers.id"));
    // Declared keys show as REFERENCES, not as join lines.
    assert!(e.context.contains("product_id INTEGER REFERENCES shop.products(id)"));
    assert!(!e.context.contains("-- join (inferred): shop.order_items.product_id"));
}

#[test]
fn the_namespace_and_neighbours_lift_related_tables() {
    let e = explore("employees and their department names");
    let names = ranked(&e);
    assert_eq!(&names[..2], ["hr.employees", "hr.departments"]);
    assert!(e.joins.iter().any(|p| p.steps.len() == 1 && p.steps[0].inferred));
}

#[test]
fn history_hints_count_less_than_the_question() {
    let ex = Explorer::new(shop());
    let e = ex.explore(
        "and how many of them are there?",
        Some("customers in Porto"),
        Budget::tokens(2000),
    );
    assert_eq!(e.tables[0].name, name("shop", "customers"));
    let e = ex.explore("which products?", Some("customers in Porto"), Budget::tokens(2000));
    assert_eq!(e.tables[0].name, name("shop", "products"));
}

#[test]
fn unrelated_questions_get_no_tables() {
    let e = explore("the weather is lovely");
    assert!(e.tables.is_empty());
    assert!(e.context.is_empty());
    assert_eq!(e.estimated_tokens, 0);
}

#[test]
fn output_is_deterministic_and_independent_of_catalog_order() {
    let q = "paid orders of customers in Lisbon by month";
    let a = explore(q);
    assert_eq!(a, explore(q));
    let mut reversed = shop();
    reversed.tables.reverse();
    let b = Explorer::new(reversed).explore(q, None, Budget::tokens(2000));
    assert_eq!(ranked(&a), ranked(&b));
    let scores = |e: &Exploration| e.tables.iter().map(|t| t.score).collect::<Vec<_>>();
    assert_eq!(scores(&a), scores(&b));
}

#[test]
fn ties_break_by_name() {
    let snap = CatalogSnapshot {
        tables: ["b", "a", "c"]
            .iter()
            .map(|s| Table::new(name(s, "widgets"), TableKind::Table).column(Col::new("id", "INTEGER")))
            .collect(),
    };
    let e = Explorer::new(snap).explore("widgets", None, Budget::tokens(100));
    assert_eq!(ranked(&e), ["a.widgets", "b.widgets", "c.widgets"]);
}

#[test]
fn the_context_shrinks_to_the_budget() {
    let ex = Explorer::new(shop());
    let q = "customers orders products order items employees departments revenue stores";
    let full = ex.explore(q, None, Budget::tokens(10_000));
    assert!(full.context_tables.len() >= 6);
    let small = ex.explore(q, None, Budget::tokens(120));
    assert!(small.estimated_tokens <= 120);
    assert!(!small.context_tables.is_empty() && small.context_tables.len() < full.context_tables.len());
    let none = ex.explore(q, None, Budget::tokens(5));
    assert!(none.context.is_empty() && none.context_tables.is_empty());
    assert_eq!(
        none.tables, full.tables,
        "the ranking does not depend on the token budget"
    );
    assert_eq!(
        ex.explore(q, None, Budget::tokens(10_000).max_tables(2)).tables.len(),
        2
    );
}

#[test]
fn wide_tables_are_reduced_to_matched_and_key_columns() {
    let mut wide =
        Table::new(name("s", "events"), TableKind::Table).column(Col::new("event_id", "BIGINT").primary_key());
    for i in 0..60 {
        wide = wide.column(Col::new(format!("attribute_{i}"), "VARCHAR"));
    }
    wide = wide.column(Col::new("country", "VARCHAR"));
    let e =
        Explorer::new(CatalogSnapshot { tables: vec![wide] }).explore("events per country", None, Budget::tokens(500));
    assert_eq!(e.tables[0].columns, ["event_id", "country"]);
    assert!(e.context.contains("country VARCHAR"));
    assert!(e.context.contains("-- 60 more columns"));
    assert!(!e.context.contains("attribute_7"));
}

/// One table per linguistic rule, each with a distractor sharing only a weaker form of the word.
fn linguistics() -> CatalogSnapshot {
    let t = |table: &str, cols: &[&str]| {
        cols.iter()
            .fold(Table::new(name("s", table), TableKind::Table), |t, c| {
                t.column(Col::new(*c, "VARCHAR"))
            })
    };
    CatalogSnapshot {
        tables: vec![
            t("matches", &["match_id", "winner_name", "loser_name", "year"]),
            t("cars_data", &["id", "mpg", "horsepower"]),
            t("events", &["event_id", "ticket_price"]),
            t("tickets", &["ticket_id", "seat"]),
            t("products", &["product_id", "price"]),
            t("department", &["dept_id", "dept_name"]),
            t("flights", &["flight_no", "departing_airport"]),
            t("highschooler", &["id", "grade"]),
            t("countrylanguage", &["country_code", "language"]),
            t("museum", &["museum_id", "open_year"]),
            t("visitor", &["visitor_id", "age"]),
        ],
    }
}

#[test]
fn general_linguistics_link_question_words_to_names() {
    let ex = Explorer::new(linguistics());
    let top = |q: &str| ex.explore(q, None, Budget::tokens(1000)).tables[0].name.table.clone();
    let top_match = |q: &str| ex.explore(q, None, Budget::tokens(1000)).tables[0].matches[0].clone();
    // Irregular verb -> its doer.
    assert_eq!(top("Who won the most?"), "matches");
    assert_eq!(top_match("Who won the most?").kind, MatchKind::Derived);
    // Initials of consecutive words.
    let e = ex.explore("cars with the best miles per gallon", None, Budget::tokens(1000));
    assert_eq!(e.tables[0].name.table, "cars_data");
    assert!(e.tables[0].matches.iter().any(|m| m.term == "mpg"));
    // Consecutive words equal to a multi-word name beat the same words apart.
    let e = ex.explore("which ones have the highest ticket price?", None, Budget::tokens(1000));
    assert_eq!(e.tables[0].name.table, "events");
    assert!(e.tables[0].matches.iter().any(|m| m.kind == MatchKind::Phrase));
    // Inflections match, derivations do not outrank them: departing is not department.
    assert_eq!(top("flights departing after noon"), "flights");
    // Two words written as one, and a compound split into catalog words.
    assert_eq!(top("high schoolers in grade 9"), "highschooler");
    assert_eq!(top("which languages are spoken"), "countrylanguage");
    // A doer from its verb: people who visit.
    assert_eq!(top("how many people visit each year"), "visitor");
    // Sort phrases say nothing about tables.
    let e = ex.explore("museums in descending order of open year", None, Budget::tokens(1000));
    assert!(e.tables.iter().flat_map(|t| &t.matches).all(|m| m.term != "order"));
}

#[test]
fn the_explorer_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Explorer>();
}

fn words() -> impl Strategy<Value = String> {
    let vocab = [
        "customers",
        "orders",
        "paid",
        "Lisbon",
        "products",
        "qty",
        "employees",
        "salary",
        "2021",
        "departments",
        "revenue",
        "month",
        "city",
        "how",
        "many",
        "the",
        "new",
        "york",
        "items",
        "stores",
        "category",
        "hired",
    ];
    prop::collection::vec(prop::sample::select(vocab.to_vec()), 0..12).prop_map(|w| w.join(" "))
}

proptest! {
    #[test]
    fn context_never_exceeds_the_budget(q in words(), h in prop::option::of(words()), tokens in 0usize..700, max in 0usize..12) {
        let ex = Explorer::new(shop());
        let e = ex.explore(&q, h.as_deref(), Budget::tokens(tokens).max_tables(max));
        prop_assert!(e.estimated_tokens <= tokens, "{} > {tokens}", e.estimated_tokens);
        prop_assert_eq!(e.estimated_tokens, estimate_tokens(&e.context));
        prop_assert!(e.tables.len() <= max);
        for w in e.tables.windows(2) {
            prop_assert!(w[0].score >= w[1].score);
        }
    }
}
