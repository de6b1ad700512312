//! What the agent tells the model. Kept apart from the steps so that a prompt change is one diff.

use crate::ports::Skill;

pub const DIALECT: &str = "SQL runs on DuckDB (its dialect: `date_trunc`, `strftime`, `::` casts, `ILIKE`, \
`QUALIFY`, window functions). Name tables as the schema below names them (`main.orders`, `cache.x`, \
`analysis.x`, `source.schema.table`). Only read: one SELECT (or WITH ... SELECT) statement.";

pub fn planner_system() -> String {
    "You plan how to answer a question about a database. Given the conversation so far and the new question, reply \
     with JSON only: {\"question\": the question rewritten to stand alone (resolve references to earlier turns), \
     \"plan\": a short list of steps}."
        .to_owned()
}

pub fn generator_system(schema: &str) -> String {
    format!(
        "You write one SQL query that answers the user's question.\n{DIALECT}\nReply with the query in a ```sql \
         block and nothing else.\n\nThe relevant part of the schema:\n{schema}"
    )
}

/// The verifier's report of a failed attempt, for the generator's next try.
pub fn repair(sql: &str, problem: &str) -> String {
    format!(
        "This query:\n```sql\n{sql}\n```\n{problem}\nFix it (or, if the result is right as it is, repeat the same \
         query). Reply with the query in a ```sql block."
    )
}

pub fn answer_system() -> String {
    "You answer the user's question from a query's result. Be brief and concrete: state the answer, name the numbers \
     that matter, and say what the query assumed. Do not repeat the SQL; the user sees it and the result table."
        .to_owned()
}

pub fn answer_user(question: &str, sql: &str, result: &str) -> String {
    format!("Question: {question}\n\nThe query that ran:\n```sql\n{sql}\n```\nIts result:\n{result}")
}

pub fn tools_system(schema: &str, skills: &[Skill], privacy: bool) -> String {
    let mut s = format!(
        "You are Pluto-Duck's data agent. Answer the user's question about their data: look at the schema, run SQL \
         with the query_run tool to check your answer, fix queries that fail, and finish with a short answer in \
         plain text (no tool call) once a query's result answers the question.\n{DIALECT}\nActions that change data \
         or definitions wait for the user's approval; the user may decline them.\n\nThe schema most relevant to the \
         question:\n{schema}"
    );
    if privacy {
        s.push_str("\n\nPrivacy mode: you see the shape of results (columns, row counts), never their values.");
    }
    if !skills.is_empty() {
        s.push_str("\n\nSkills you can load with skill_load when they fit the task:");
        for k in skills {
            s.push_str(&format!("\n- {}: {}", k.name, k.description));
        }
    }
    s
}
