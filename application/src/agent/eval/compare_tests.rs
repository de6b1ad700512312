use proptest::prelude::*;

use super::*;

fn rs(rows: Vec<Vec<Value>>) -> ResultSet {
    let width = rows.first().map_or(0, Vec::len);
    ResultSet::new((0..width).map(|i| format!("c{i}")).collect(), rows)
}

fn t(s: &str) -> Value {
    Value::Text(s.to_owned())
}

use Value::{Float as F, Int as I, Null as N};

#[test]
fn order_is_ignored_without_a_top_level_order_by() {
    let gold = rs(vec![vec![I(1), t("a")], vec![I(2), t("b")]]);
    let pred = rs(vec![vec![I(2), t("b")], vec![I(1), t("a")]]);
    assert!(compare(&gold, &pred, RowOrder::Ignored).is_match());
    assert_eq!(
        compare(&gold, &pred, RowOrder::Compared),
        Comparison::Mismatch(Mismatch::Order)
    );
}

#[test]
fn duplicates_count() {
    let gold = rs(vec![vec![I(1)], vec![I(1)], vec![I(2)]]);
    let pred = rs(vec![vec![I(1)], vec![I(2)], vec![I(2)]]);
    assert_eq!(
        compare(&gold, &pred, RowOrder::Ignored),
        Comparison::Mismatch(Mismatch::Column {
            index: 0,
            name: "c0".into()
        })
    );
    let fewer = rs(vec![vec![I(1)], vec![I(2)]]);
    assert_eq!(
        compare(&gold, &fewer, RowOrder::Ignored),
        Comparison::Mismatch(Mismatch::RowCount { gold: 3, predicted: 2 })
    );
}

#[test]
fn numbers_agree_within_tolerance_and_across_kinds() {
    let gold = rs(vec![vec![I(2), F(1.98), F(1e-12)]]);
    let pred = rs(vec![vec![F(2.0), F(1.980_000_000_1), F(0.0)]]);
    assert!(compare(&gold, &pred, RowOrder::Ignored).is_match());
    let off = rs(vec![vec![F(2.0), F(1.99), F(0.0)]]);
    assert!(!compare(&gold, &off, RowOrder::Ignored).is_match());
    // Relative: a millionth of a large number is fine, a thousandth is not.
    assert!(values_equal(&F(1_000_000.0), &F(1_000_000.5)));
    assert!(!values_equal(&F(1_000.0), &F(1_001.0)));
    // Integers are exact.
    assert!(!values_equal(&I(1_000_000_000_000), &I(1_000_000_000_001)));
    assert!(values_equal(&F(f64::NAN), &F(f64::NAN)));
}

#[test]
fn kinds_do_not_mix_and_nulls_equal_nulls() {
    assert!(values_equal(&N, &N));
    assert!(!values_equal(&N, &I(0)));
    assert!(!values_equal(&t("1"), &I(1)));
    assert!(!values_equal(&Value::Bool(true), &I(1)));
    assert!(!values_equal(&t("a"), &t("A")));
    let gold = rs(vec![vec![N, t("x")], vec![I(3), N]]);
    let pred = rs(vec![vec![I(3), N], vec![N, t("x")]]);
    assert!(compare(&gold, &pred, RowOrder::Ignored).is_match());
}

#[test]
fn columns_may_be_permuted_and_names_do_not_matter() {
    let gold = ResultSet::new(
        vec!["name".into(), "n".into()],
        vec![vec![t("a"), I(3)], vec![t("b"), I(1)]],
    );
    let pred = ResultSet::new(
        vec!["count".into(), "artist".into()],
        vec![vec![I(1), t("b")], vec![I(3), t("a")]],
    );
    assert_eq!(
        compare(&gold, &pred, RowOrder::Ignored),
        Comparison::Match { column_map: vec![1, 0] }
    );
    assert!(compare(
        &gold,
        &rs(vec![vec![I(3), t("a")], vec![I(1), t("b")]]),
        RowOrder::Compared
    )
    .is_match());
}

#[test]
fn a_permutation_is_searched_when_columns_hold_the_same_values() {
    // Both columns hold {1, 2}: only the swapped permutation lines the rows up.
    let gold = rs(vec![vec![I(1), I(2)], vec![I(1), I(1)], vec![I(2), I(2)]]);
    let pred = rs(vec![vec![I(2), I(1)], vec![I(1), I(1)], vec![I(2), I(2)]]);
    assert_eq!(
        compare(&gold, &pred, RowOrder::Ignored),
        Comparison::Match { column_map: vec![1, 0] }
    );
    // Same column multisets, no permutation works.
    let pred = rs(vec![vec![I(1), I(1)], vec![I(1), I(2)], vec![I(2), I(2)]]);
    let gold = rs(vec![vec![I(1), I(2)], vec![I(2), I(1)], vec![I(1), I(2)]]);
    assert_eq!(
        compare(&gold, &pred, RowOrder::Ignored),
        Comparison::Mismatch(Mismatch::Rows)
    );
}

#[test]
fn shapes_must_agree_except_for_two_empty_results() {
    let gold = rs(vec![vec![I(1), I(2)]]);
    assert_eq!(
        compare(&gold, &rs(vec![vec![I(1)]]), RowOrder::Ignored),
        Comparison::Mismatch(Mismatch::ColumnCount { gold: 2, predicted: 1 })
    );
    assert_eq!(
        compare(&gold, &rs(vec![vec![I(1), I(3)]]), RowOrder::Ignored),
        Comparison::Mismatch(Mismatch::Column {
            index: 1,
            name: "c1".into()
        })
    );
    let empty = ResultSet::new(vec!["a".into()], vec![]);
    assert!(compare(&empty, &ResultSet::default(), RowOrder::Compared).is_match());
}

#[test]
fn near_equal_floats_that_sort_apart_still_match() {
    let gold = rs(vec![vec![F(1.0), t("b")], vec![F(1.000_000_000_1), t("a")]]);
    let pred = rs(vec![vec![F(1.000_000_000_1), t("b")], vec![F(1.0), t("a")]]);
    assert!(compare(&gold, &pred, RowOrder::Ignored).is_match());
}

#[test]
fn top_level_order_by_is_found_outside_parentheses_strings_and_comments() {
    assert!(has_top_level_order_by("select a from t order by a"));
    assert!(has_top_level_order_by("SELECT a FROM t\nORDER\n  BY 1 DESC LIMIT 5"));
    assert!(has_top_level_order_by(
        "with x as (select * from t order by b) select * from x ORDER /* c */ BY a"
    ));
    assert!(!has_top_level_order_by(
        "with x as (select * from t order by b) select * from x"
    ));
    assert!(!has_top_level_order_by(
        "select rank() over (partition by g order by v) from t"
    ));
    assert!(!has_top_level_order_by(
        "select string_agg(name, ',' order by name) from t"
    ));
    assert!(!has_top_level_order_by(
        "select 'order by' as s, \"order by\" from t -- order by s"
    ));
    assert!(!has_top_level_order_by("select border, by_x from t"));
    assert!(!has_top_level_order_by("select 'it''s order by' from t"));
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-50i128..50).prop_map(Value::Int),
        (-50i32..50).prop_map(|x| Value::Float(f64::from(x) / 4.0)),
        "[a-c]{0,2}".prop_map(Value::Text),
    ]
}

/// A table of 1..5 columns and 0..8 rows.
fn table() -> impl Strategy<Value = Vec<Vec<Value>>> {
    (1usize..5, 0usize..8).prop_flat_map(|(w, h)| prop::collection::vec(prop::collection::vec(value(), w), h))
}

/// A value no table of `value()` holds near `v`.
fn changed(v: &Value) -> Value {
    match v {
        Value::Null => Value::Int(1_000),
        Value::Bool(b) => Value::Bool(!b),
        Value::Int(i) => Value::Int(i + 1_000),
        Value::Float(x) => Value::Float(x + 1_000.5),
        Value::Text(s) => Value::Text(format!("{s}z")),
    }
}

proptest! {
    #[test]
    fn a_result_matches_itself(rows in table(), ordered in any::<bool>()) {
        let order = if ordered { RowOrder::Compared } else { RowOrder::Ignored };
        prop_assert!(compare(&rs(rows.clone()), &rs(rows), order).is_match());
    }

    #[test]
    fn permuting_rows_never_changes_an_order_insensitive_verdict(
        gold in table(),
        other in table(),
        seed in any::<u64>(),
    ) {
        let shuffled = |rows: &Vec<Vec<Value>>| {
            let mut r = rows.clone();
            shuffle(&mut r, seed);
            r
        };
        for pred in [gold.clone(), other] {
            let before = compare(&rs(gold.clone()), &rs(pred.clone()), RowOrder::Ignored).is_match();
            let after = compare(&rs(gold.clone()), &rs(shuffled(&pred)), RowOrder::Ignored).is_match();
            prop_assert_eq!(before, after);
        }
    }

    #[test]
    fn permuting_columns_never_changes_the_verdict(
        gold in table(),
        other in table(),
        seed in any::<u64>(),
        ordered in any::<bool>(),
    ) {
        let order = if ordered { RowOrder::Compared } else { RowOrder::Ignored };
        for pred in [gold.clone(), other] {
            let width = pred.first().map_or(0, Vec::len);
            let mut perm: Vec<usize> = (0..width).collect();
            shuffle(&mut perm, seed);
            let permuted: Vec<Vec<Value>> =
                pred.iter().map(|r| perm.iter().map(|&j| r[j].clone()).collect()).collect();
            let before = compare(&rs(gold.clone()), &rs(pred.clone()), order).is_match();
            let after = compare(&rs(gold.clone()), &rs(permuted), order).is_match();
            prop_assert_eq!(before, after);
        }
    }

    #[test]
    fn a_changed_value_always_changes_the_verdict(
        gold in table().prop_filter("has rows", |r| !r.is_empty()),
        pick in any::<(usize, usize)>(),
        ordered in any::<bool>(),
    ) {
        let order = if ordered { RowOrder::Compared } else { RowOrder::Ignored };
        let mut pred = gold.clone();
        let r = pick.0 % pred.len();
        let c = pick.1 % pred[r].len();
        pred[r][c] = changed(&pred[r][c]);
        prop_assert!(!compare(&rs(gold), &rs(pred), order).is_match());
    }
}

/// Fisher-Yates with a small deterministic generator (the seed comes from proptest).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (seed >> 33) as usize % (i + 1);
        items.swap(i, j);
    }
}
