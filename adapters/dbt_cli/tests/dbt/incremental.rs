//! The starter project's incremental model: a second run adds only the new rows.

use std::io::Write;

use pluto_duck_application::ports::{DbtCommand, DbtStatus};

use crate::support::{invoke, log_text, result, Project};

#[tokio::test]
async fn a_second_run_adds_only_new_rows() {
    let p = Project::starter();
    let (first, events) = invoke(p.invocation(DbtCommand::Build)).await;
    let first = first.unwrap();
    assert_eq!(first.status, DbtStatus::Succeeded, "{}", log_text(&events));
    let first_id = first.invocation_id.clone().unwrap();
    assert_eq!(p.query_i64("select count(*) from order_items"), 225);

    // Two new orders, placed after every order already loaded, with four items between them.
    let append = |file: &str, rows: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(p.project.join("seeds").join(file))
            .unwrap();
        f.write_all(rows.as_bytes()).unwrap();
    };
    append(
        "raw_orders.csv",
        "101,3,2,2024-06-01 09:30:00,placed\n102,7,1,2024-06-01 10:05:00,placed\n",
    );
    append(
        "raw_order_items.csv",
        "226,101,JAF-001,1\n227,101,BEV-002,2\n228,102,JAF-004,1\n229,102,BEV-005,1\n",
    );
    append("raw_payments.csv", "117,101,credit_card,2184\n118,102,gift_card,1908\n");

    let (second, events) = invoke(p.invocation(DbtCommand::Build)).await;
    let second = second.unwrap();
    assert_eq!(second.status, DbtStatus::Succeeded, "{}", log_text(&events));
    let second_id = second.invocation_id.clone().unwrap();
    assert_ne!(first_id, second_id);
    assert!(result(&second, "order_items").message.is_some());

    let count = |id: &str| {
        p.query_i64(&format!(
            "select count(*) from order_items where loaded_by_invocation = '{id}'"
        ))
    };
    assert_eq!(count(&first_id), 225, "the first run's rows are kept, not rebuilt");
    assert_eq!(count(&second_id), 4, "the second run added the new items only");
    assert_eq!(p.query_i64("select max(order_id) from order_items"), 102);
    assert_eq!(
        p.query_i64("select count(*) from orders"),
        102,
        "the tables around it are rebuilt"
    );
}
