//! The agent end to end, in-process: the real wiring (DuckDB, the metadata store, the action use cases) and a
//! local HTTP server that speaks OpenAI's and Ollama's wire protocols (streamed replies, tool calls).

use std::time::{Duration, Instant};

use pluto_duck_application::agent::{Ask, Decision, LlmSettingsUpdate};
use pluto_duck_application::{App, ErrorKind, QuerySubmission};
use pluto_duck_bootstrap::config::Config;
use pluto_duck_domain::{ProjectId, Run, RunEventKind, RunStatus};
use pluto_duck_fake_llm::{Behavior, Cut, FakeLlmServer, FakeToolCall, Reply};
use serde_json::{json, Value};

use crate::helpers::{poll_async, Sandbox};

struct Agent {
    _sandbox: Sandbox,
    app: App,
    llm: FakeLlmServer,
    project: ProjectId,
}

async fn agent(provider: &str, tune: impl FnOnce(&mut Config, &FakeLlmServer)) -> Agent {
    let sandbox = Sandbox::new();
    let llm = FakeLlmServer::start().await.unwrap();
    let mut config = sandbox.config();
    config.llm.provider = provider.into();
    config.llm.model = "fake-model".into();
    config.llm.base_url = Some(match provider {
        "ollama" => llm.ollama_base_url(),
        _ => llm.openai_base_url(),
    });
    config.llm.max_attempts = 3;
    config.llm.first_token_timeout_secs = 5;
    config.llm.idle_timeout_secs = 2;
    config.llm.call_timeout_secs = 20;
    config.agent.approval_timeout_secs = 30;
    tune(&mut config, &llm);
    let wired = pluto_duck_bootstrap::wiring::wire(&config).await.unwrap();
    let project = ProjectId::default_project();
    let agent = Agent {
        _sandbox: sandbox,
        app: wired.app,
        llm,
        project,
    };
    agent
        .sql(
            "CREATE TABLE main.orders AS SELECT i AS id, 'cust_' || (i % 7) AS customer, (i * 3.5)::DOUBLE AS amount, \
             DATE '2024-01-01' + (i % 60)::INTEGER AS ordered_at FROM range(1, 101) t(i)",
        )
        .await;
    agent
        .sql(
            "CREATE TABLE main.customers AS SELECT i AS id, 'Xylophone Person ' || i AS name, \
             'ZEBRA-' || (7700 + i) AS secret_note FROM range(0, 7) t(i)",
        )
        .await;
    agent
}

impl Agent {
    async fn sql(&self, sql: &str) -> Run {
        let run = self
            .app
            .queries
            .submit(
                &self.project,
                QuerySubmission {
                    sql: sql.into(),
                    timeout_ms: None,
                    max_rows: None,
                    read_only: false,
                    params: Vec::new(),
                    actor: None,
                },
            )
            .await
            .unwrap();
        self.app
            .queries
            .wait(&self.project, run.id.as_str(), Duration::from_secs(60))
            .await
            .unwrap()
    }

    async fn ask(&self, question: &str, conversation: Option<&str>) -> (Run, String) {
        let (run, c) = self
            .app
            .agent
            .ask(
                &self.project,
                Ask {
                    question: question.into(),
                    conversation: conversation.map(str::to_owned),
                    actor: "test".into(),
                    ..Ask::default()
                },
            )
            .await
            .unwrap();
        (run, c.id.to_string())
    }

    async fn finish(&self, run: &Run) -> Run {
        let done = self
            .app
            .agent
            .wait(&self.project, run.id.as_str(), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(done.status.is_terminal(), "the turn did not finish: {:?}", done.status);
        done
    }

    /// The turn's events as (name, data), from the first.
    async fn events(&self, run: &Run) -> Vec<(String, Value)> {
        let sub = self.app.agent.events(&self.project, run.id.as_str(), 0).await.unwrap();
        sub.past
            .into_iter()
            .map(|e| match e.kind {
                RunEventKind::Custom { name, data } => (name, serde_json::from_str(&data).unwrap()),
                other => (other.name().to_owned(), Value::Null),
            })
            .collect()
    }

    /// Every chat request's messages, as JSON text.
    fn sent(&self) -> Vec<String> {
        self.llm.chat_requests().into_iter().map(|r| r.raw_body).collect()
    }
}

fn detail(run: &Run) -> Value {
    serde_json::from_str(run.detail.as_deref().expect("a turn keeps its detail")).unwrap()
}

fn call(id: &str, tool: &str, args: Value) -> Behavior {
    let text = args.to_string();
    // Split the arguments the way OpenAI streams them: in pieces.
    let (a, b) = text.split_at(text.len() / 2);
    Behavior::Reply(Reply::tools(vec![FakeToolCall::new(id, tool, &[a, b])]).with_usage(100, 10))
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

#[tokio::test]
async fn openai_tools_a_wrong_query_is_repaired_and_every_event_arrives_in_order() {
    let a = agent("openai", |_, _| {}).await;
    a.llm
        .push(call(
            "c1",
            "query_run",
            json!({"sql": "SELECT sum(amout) AS total FROM main.orders"}),
        ))
        .push(call(
            "c2",
            "query_run",
            json!({"sql": "SELECT sum(amount) AS total FROM main.orders"}),
        ))
        .push(Behavior::Reply(
            Reply::text(&["The total is ", "17675."]).with_usage(300, 8),
        ));
    let (run, _) = a.ask("What is the total order amount?", None).await;
    assert_eq!(run.kind, pluto_duck_domain::RunKind::AgentTurn);
    let done = a.finish(&run).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.failure);
    let d = detail(&done);
    assert_eq!(d["sql"], "SELECT sum(amount) AS total FROM main.orders");
    assert_eq!(d["answer"], "The total is 17675.");
    assert_eq!(d["repairs"], 1);
    assert_eq!(d["preview"]["rows"][0][0], 17675.0);
    assert_eq!(d["chart"]["type"], "metric");
    assert_eq!(d["tokens"]["prompt"], 500);

    let events = a.events(&done).await;
    assert_eq!(
        names(&events),
        vec![
            "queued",
            "started",
            "step_started",
            "schema",
            "step_finished",
            "step_started",
            "tool_call",
            "tool_result",
            "tool_call",
            "tool_result",
            "text",
            "text",
            "step_finished",
            "step_started",
            "answer",
            "step_finished",
            "completed"
        ]
    );
    let failed = &events[7].1;
    assert_eq!(failed["ok"], false);
    assert!(failed["error"].as_str().unwrap().contains("amout"), "{failed}");
    assert!(events[3].1["tables"]
        .as_array()
        .unwrap()
        .contains(&json!("main.orders")));

    let sent = a.sent();
    assert_eq!(sent.len(), 3);
    assert!(
        sent[0].contains("query_run") && sent[0].contains("main.orders"),
        "tools and schema go to the model"
    );
    assert!(sent[1].contains("amout"), "the model reads the error of its query");
    assert!(sent[2].contains("17675"), "the model reads the result");

    // A client that connects late, or resumes after the 5th event, sees the same events.
    let sub = a.app.agent.events(&a.project, run.id.as_str(), 5).await.unwrap();
    assert_eq!(sub.past.first().map(|e| e.seq), Some(6));
    assert!(sub.live.is_none());
}

#[tokio::test]
async fn ollama_steps_the_verifier_sends_a_failing_query_back_to_the_generator() {
    let a = agent("ollama", |c, _| c.agent.mode = "steps".into()).await;
    a.llm
        .push(Behavior::text(&[
            "{\"question\": \"How many orders are there?\", \"plan\": [\"count orders\"]}",
        ]))
        .push(Behavior::text(&["```sql\nSELECT count(*) AS n FROM main.ordrs\n```"]))
        .push(Behavior::text(&["```sql\nSELECT count(*) AS n FROM main.orders;\n```"]))
        .push(Behavior::text(&["There are ", "100 orders."]));
    let (run, _) = a.ask("How many orders are there?", None).await;
    let done = a.finish(&run).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.failure);
    let d = detail(&done);
    assert_eq!(d["sql"], "SELECT count(*) AS n FROM main.orders");
    assert_eq!(d["answer"], "There are 100 orders.");
    assert_eq!(d["repairs"], 1);
    assert_eq!(d["plan"], json!(["count orders"]));
    let events = a.events(&done).await;
    let custom: Vec<&str> = names(&events).into_iter().filter(|n| !n.starts_with("step_")).collect();
    assert_eq!(
        custom,
        vec![
            "queued",
            "started",
            "plan",
            "schema",
            "sql",
            "sql_failed",
            "repair",
            "sql",
            "sql_verified",
            "text",
            "text",
            "answer",
            "completed"
        ]
    );
    let sent = a.sent();
    assert!(a.llm.chat_requests().iter().all(|r| r.path == "/api/chat"));
    assert!(
        sent[2].contains("ordrs") && sent[2].contains("does not exist"),
        "the repair request names the error"
    );
}

#[tokio::test]
async fn a_writing_action_waits_for_approval_and_each_decision_behaves() {
    let a = agent("openai", |c, _| c.agent.approval_timeout_secs = 2).await;
    let save = |id: &str| {
        call(
            "s",
            "analysis_save",
            json!({"id": id, "sql": "SELECT * FROM main.orders WHERE amount > 300"}),
        )
    };
    let approvals = |a: &Agent| a.app.agent.approvals(&a.project);

    // Approve.
    a.llm.push(save("big_orders")).push(Behavior::text(&["Saved it."]));
    let (run, _) = a.ask("Save the big orders as an analysis", None).await;
    let pending = poll_async(Duration::from_secs(20), || async { approvals(&a).into_iter().next() }).await;
    assert_eq!(pending.action, "analysis.save");
    assert!(
        a.app.analyses.get(&a.project, "big_orders").await.is_err(),
        "nothing is written before approval"
    );
    a.app
        .agent
        .decide(&a.project, &pending.id, Decision::Approve, "ann")
        .unwrap();
    let done = a.finish(&run).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.failure);
    assert!(a.app.analyses.get(&a.project, "big_orders").await.is_ok());
    assert_eq!(detail(&done)["actions"][0]["approval"]["decision"], "approved");
    assert_eq!(detail(&done)["actions"][0]["approval"]["by"], "ann");
    let events = a.events(&done).await;
    let decided = events.iter().find(|(n, _)| n == "approval_decided").unwrap();
    assert_eq!(decided.1["decision"], "approved");

    // Reject: nothing written, the model is told.
    a.llm
        .push(save("rejected_one"))
        .push(Behavior::text(&["OK, not saved."]));
    let (run, _) = a.ask("Save them again", None).await;
    let pending = poll_async(Duration::from_secs(20), || async { approvals(&a).into_iter().next() }).await;
    a.app
        .agent
        .decide(
            &a.project,
            &pending.id,
            Decision::Reject {
                reason: Some("not now".into()),
            },
            "ann",
        )
        .unwrap();
    let done = a.finish(&run).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert!(a.app.analyses.get(&a.project, "rejected_one").await.is_err());
    assert_eq!(detail(&done)["actions"][0]["approval"]["decision"], "rejected");
    assert!(
        a.sent().last().unwrap().contains("declined"),
        "the model hears of the rejection"
    );

    // Edit: the person's arguments are used.
    a.llm.push(save("model_name")).push(Behavior::text(&["Saved."]));
    let (run, _) = a.ask("Save them once more", None).await;
    let pending = poll_async(Duration::from_secs(20), || async { approvals(&a).into_iter().next() }).await;
    let edited = json!({"id": "person_name", "sql": "SELECT id FROM main.orders"});
    a.app
        .agent
        .decide(&a.project, &pending.id, Decision::Edit { args: edited }, "ann")
        .unwrap();
    a.finish(&run).await;
    assert!(a.app.analyses.get(&a.project, "person_name").await.is_ok());
    assert!(a.app.analyses.get(&a.project, "model_name").await.is_err());

    // Left alone: it times out as a rejection, cleanly, and the turn goes on.
    a.llm
        .push(save("ignored"))
        .push(Behavior::text(&["Nobody answered; nothing saved."]));
    let (run, _) = a.ask("Save the orders", None).await;
    let started = Instant::now();
    let done = a.finish(&run).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(done.status, RunStatus::Succeeded);
    assert!(a.app.analyses.get(&a.project, "ignored").await.is_err());
    let events = a.events(&done).await;
    let decided = events.iter().find(|(n, _)| n == "approval_decided").unwrap();
    assert_eq!(
        (decided.1["decision"].as_str(), decided.1["by"].as_str()),
        (Some("rejected"), Some("timeout"))
    );
    assert!(approvals(&a).is_empty(), "a timed-out request is withdrawn");
    assert!(a
        .app
        .agent
        .decide(
            &a.project,
            decided.1["approval"].as_str().unwrap(),
            Decision::Approve,
            "late"
        )
        .is_err());
}

#[tokio::test]
async fn privacy_mode_sends_no_value_of_any_table_to_the_provider() {
    let a = agent("openai", |c, _| c.agent.privacy = true).await;
    a.llm
        .push(call("d", "table_describe", json!({"table": "main.customers"})))
        .push(call("s", "schema_search", json!({"question": "customer notes"})))
        .push(call(
            "q",
            "query_run",
            json!({"sql": "SELECT name, secret_note FROM main.customers ORDER BY id"}),
        ))
        .push(Behavior::text(&["There are 7 customers with notes."]));
    let (run, _) = a.ask("Show the customers' notes", None).await;
    let done = a.finish(&run).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.failure);
    // The user sees the values...
    let d = detail(&done);
    assert_eq!(d["preview"]["rows"][0][1], "ZEBRA-7700");
    assert_eq!(d["privacy"], true);
    // ...the provider never did, in any request.
    let sent = a.sent();
    assert_eq!(sent.len(), 4);
    for body in &sent {
        for needle in ["ZEBRA", "Xylophone", "cust_"] {
            assert!(!body.contains(needle), "{needle} reached the provider: {body}");
        }
    }
    assert!(
        sent[3].contains("7 rows"),
        "the model still learns the shape of the result"
    );
    assert!(sent[3].contains("secret_note"), "and the column names");
}

async fn failing(a: &Agent, question: &str) -> (Run, Value) {
    let (run, _) = a.ask(question, None).await;
    let started = Instant::now();
    let done = a.finish(&run).await;
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(done.status, RunStatus::Failed, "{question}");
    let events = a.events(&done).await;
    let error = events
        .iter()
        .find(|(n, _)| n == "error")
        .unwrap_or_else(|| panic!("no error event: {:?}", names(&events)))
        .1
        .clone();
    assert_eq!(names(&events).last(), Some(&"failed"));
    (done, error)
}

#[tokio::test]
async fn provider_failures_end_the_turn_with_a_clear_error_event() {
    // Unreachable.
    let a = agent("openai", |c, _| c.llm.base_url = Some("http://127.0.0.1:9/v1".into())).await;
    let (_, e) = failing(&a, "How many orders?").await;
    assert_eq!(e["type"], "unavailable");
    assert!(e["message"].as_str().unwrap().contains("unreachable"), "{e}");

    let a = agent("openai", |_, _| {}).await;
    // A malformed reply.
    a.llm
        .push(Behavior::cut(Reply::text(&["a", "b", "c"]), 1, Cut::Malformed));
    let (_, e) = failing(&a, "How many orders?").await;
    assert!(e["message"].as_str().unwrap().contains("cannot be read"), "{e}");
    // A 429 storm: retried within the limit, then given up.
    a.llm.always(Behavior::rate_limited(Some("0"), Some(20)));
    let before = a.llm.chat_requests().len();
    let (_, e) = failing(&a, "How many orders?").await;
    assert!(e["message"].as_str().unwrap().contains("rate limiting"), "{e}");
    assert_eq!(a.llm.chat_requests().len() - before, 3, "max_attempts calls, no more");
    // A stall mid-stream.
    a.llm.always(Behavior::text(&["fine"]));
    a.llm.push(Behavior::cut(Reply::text(&["a", "b", "c"]), 1, Cut::Stall));
    let (_, e) = failing(&a, "How many orders?").await;
    assert_eq!(e["type"], "timeout", "{e}");
    // A model that calls tools that do not exist.
    a.llm.always(call("u", "drop_everything", json!({})));
    let (done, e) = failing(&a, "How many orders?").await;
    assert!(e["message"].as_str().unwrap().contains("unknown tools"), "{e}");
    assert!(detail(&done)["model_calls"].as_u64().unwrap() <= 5);
    // A model that loops on the same call.
    a.llm.always(call("l", "query_run", json!({"sql": "SELECT 1 AS one"})));
    let (done, e) = failing(&a, "How many orders?").await;
    assert!(e["message"].as_str().unwrap().contains("same arguments"), "{e}");
    assert!(detail(&done)["tool_calls"].as_u64().unwrap() <= 4);
}

#[tokio::test]
async fn without_a_provider_the_agent_says_so_and_settings_keep_the_key_secret() {
    let a = agent("none", |_, _| {}).await;
    let err = a
        .app
        .agent
        .ask(
            &a.project,
            Ask {
                question: "How many orders?".into(),
                ..Ask::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("no language model is configured"), "{err}");

    let view = a
        .app
        .agent
        .update_settings(LlmSettingsUpdate {
            provider: Some("openai".into()),
            model: Some("fake-model".into()),
            base_url: Some(Some(a.llm.openai_base_url())),
            api_key: Some("sk-test-very-secret".to_owned().into()),
            ..LlmSettingsUpdate::default()
        })
        .await
        .unwrap();
    assert!(view.api_key_set);
    assert_eq!(view.api_key_source, "settings");
    assert!(!format!("{view:?}").contains("sk-test-very-secret"));
    let bad = a
        .app
        .agent
        .update_settings(LlmSettingsUpdate {
            provider: Some("skynet".into()),
            ..LlmSettingsUpdate::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Invalid);

    a.llm
        .push(call(
            "q",
            "query_run",
            json!({"sql": "SELECT count(*) AS n FROM main.orders"}),
        ))
        .push(Behavior::text(&["100."]));
    let (run, _) = a.ask("How many orders?", None).await;
    assert_eq!(a.finish(&run).await.status, RunStatus::Succeeded);
    let auth = a.llm.chat_requests()[0].header("authorization").map(str::to_owned);
    assert_eq!(
        auth.as_deref(),
        Some("Bearer sk-test-very-secret"),
        "the stored key is what the provider gets"
    );
}

#[tokio::test]
async fn conversations_carry_earlier_turns_and_deleting_one_drops_its_work_zone() {
    let a = agent("openai", |_, _| {}).await;
    a.llm
        .push(call(
            "q",
            "query_run",
            json!({"sql": "SELECT count(*) AS n FROM main.orders"}),
        ))
        .push(Behavior::text(&["There are 100 orders."]));
    let (run, conversation) = a.ask("How many orders are there?", None).await;
    a.finish(&run).await;

    let zone = pluto_duck_domain::ConversationId::parse(conversation.clone())
        .unwrap()
        .zone_schema();
    a.llm
        .push(call(
            "z",
            "scratch_save",
            json!({"name": "big", "sql": "SELECT * FROM main.orders WHERE amount > 300"}),
        ))
        .push(call(
            "q",
            "query_run",
            json!({"sql": format!("SELECT count(*) AS n FROM {zone}.big")}),
        ))
        .push(Behavior::text(&["15 of them are big."]));
    let (run, same) = a.ask("And how many of those are above 300?", Some(&conversation)).await;
    assert_eq!(same, conversation);
    let done = a.finish(&run).await;
    let sent = a.sent();
    let follow_up = &sent[2];
    assert!(
        follow_up.contains("How many orders are there?"),
        "the earlier question informs the next"
    );
    assert!(
        follow_up.contains("There are 100 orders.") && follow_up.contains("count(*)"),
        "and its answer and SQL"
    );
    // The scratch table lives in the conversation's zone, and the model was told its name.
    assert_eq!(detail(&done)["actions"][0]["status"], "ok");
    assert_eq!(detail(&done)["preview"]["rows"][0][0], 15);
    assert!(sent[3].contains(&format!("{zone}.big")));
    let read = a.sql(&format!("SELECT count(*) FROM {zone}.big")).await;
    assert_eq!(read.status, RunStatus::Succeeded, "{:?}", read.failure);

    let (c, messages) = a.app.agent.conversation(&a.project, &conversation).await.unwrap();
    assert_eq!(c.title, "How many orders are there?");
    assert_eq!(messages.len(), 4);
    assert_eq!(
        messages[1].sql.as_deref(),
        Some("SELECT count(*) AS n FROM main.orders")
    );
    assert_eq!(a.app.agent.conversations(&a.project).await.unwrap().len(), 1);

    a.app
        .agent
        .delete_conversation(&a.project, &conversation)
        .await
        .unwrap();
    assert!(a.app.agent.conversation(&a.project, &conversation).await.is_err());
    let gone = a
        .app
        .queries
        .read(
            &a.project,
            format!("SELECT count(*) FROM {zone}.big"),
            None,
            "test",
            Duration::from_secs(30),
        )
        .await;
    let err = gone.err().expect("the work zone is dropped with the conversation");
    assert!(err.to_string().contains("does not exist"), "{err}");
    // The events of a turn outlive the conversation's messages in the run history.
    assert!(!a.events(&done).await.is_empty());
}

/// The YAML of a scripted model that answers each question of the set with `sql_for(question)` through the
/// query tool, then says it is done.
fn replay_script(
    set: &pluto_duck_application::agent::eval::QuestionSet,
    sql_for: impl Fn(&str, &str) -> String,
) -> String {
    let escape = |s: &str| -> String {
        s.chars()
            .flat_map(|c| {
                if "\\.+*?()|[]{}^$".contains(c) {
                    vec!['\\', c]
                } else {
                    vec![c]
                }
            })
            .collect()
    };
    let mut yaml = String::from("model: replay\nentries:\n");
    for q in &set.questions {
        let args = json!({"sql": sql_for(&q.id, &q.gold_sql)}).to_string();
        yaml.push_str(&format!(
            "  - match: {}\n    role: user\n    reply:\n      tool_calls:\n        - name: query_run\n          arguments: {}\n",
            serde_json::to_string(&format!("^{}$", escape(&q.question))).unwrap(),
            args
        ));
    }
    yaml.push_str("  - role: tool\n    reply: {text: \"Done.\"}\n");
    yaml
}

#[tokio::test]
async fn an_evaluation_run_loads_the_dataset_asks_the_agent_and_judges_each_answer() {
    let sandbox = Sandbox::new();
    let shipped = pluto_duck_application::agent::eval::load_set(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/sets/chinook.yaml"),
    )
    .unwrap();
    let mut set = shipped.clone();
    set.questions.truncate(8);
    let wrong = [set.questions[2].id.clone(), set.questions[5].id.clone()];
    let script = sandbox.path().join("replay.yaml");
    std::fs::write(
        &script,
        replay_script(&set, |id, gold| {
            if wrong.iter().any(|w| w == id) {
                "SELECT 42 AS wrong".into()
            } else {
                gold.into()
            }
        }),
    )
    .unwrap();
    let mut config = sandbox.config();
    config.llm.provider = "scripted".into();
    config.llm.script = Some(script);
    config.eval.datasets_dir = Some(crate::helpers::required_env("PLUTODUCK_TEST_DATASETS").into());
    let app = pluto_duck_bootstrap::wiring::wire(&config).await.unwrap().app;
    let project = ProjectId::default_project();
    let run = app
        .eval
        .start(
            &project,
            pluto_duck_application::agent::eval::EvalRequest {
                set: "chinook".into(),
                limit: Some(8),
                actor: "test".into(),
                model: None,
            },
        )
        .await
        .unwrap();
    let done = app
        .eval
        .wait(&project, run.id.as_str(), Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.failure);
    let report: pluto_duck_application::agent::eval::EvalReport =
        serde_json::from_str(done.detail.as_deref().unwrap()).unwrap();
    assert_eq!(report.totals.questions, 8);
    assert_eq!(report.totals.correct, 6);
    let judged_wrong: Vec<&str> = report
        .questions
        .iter()
        .filter(|q| q.verdict != pluto_duck_application::agent::eval::Verdict::Correct)
        .map(|q| q.id.as_str())
        .collect();
    assert_eq!(judged_wrong, wrong.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(report.questions.iter().all(|q| q.generated_sql.is_some()));
    // Progress: one event per question, in order.
    let sub = app.eval.events(&project, run.id.as_str(), 0).await.unwrap();
    let progress: Vec<u64> = sub
        .past
        .iter()
        .filter_map(|e| match &e.kind {
            RunEventKind::Custom { name, data } if name == "question" => {
                serde_json::from_str::<Value>(data).unwrap()["index"].as_u64()
            }
            _ => None,
        })
        .collect();
    assert_eq!(progress, (1..=8).collect::<Vec<_>>());
    // The dataset now lives in the project, read like any table.
    let (_, page) = app
        .queries
        .read(
            &project,
            "SELECT count(*) FROM main.artist".into(),
            None,
            "test",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(page.total_rows, 1);
}

/// The SSE body as (event, data) pairs.
fn sse(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).ok();
                }
            }
            Some((name?, data.unwrap_or(Value::Null)))
        })
        .collect()
}

#[tokio::test]
async fn over_http_a_question_is_a_job_with_the_same_links_events_and_approvals() {
    use crate::helpers::call as route;
    use crate::helpers::{json, req};
    use axum::http::StatusCode;

    let sandbox = Sandbox::new();
    let llm = FakeLlmServer::start().await.unwrap();
    let router = pluto_duck_bootstrap::commands::build_router(&sandbox.config())
        .await
        .unwrap();
    let send = |method: &'static str, uri: String, body: Option<Value>| {
        let router = router.clone();
        async move {
            let (resp, bytes) = route(&router, req(method, &uri, None, body.as_ref())).await;
            (resp, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    // No model yet: a clear 503, as problem+json.
    let (resp, body) = send(
        "POST",
        "/api/v1/query".into(),
        Some(json!({"question": "How many orders?"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert!(body.contains("no language model is configured"), "{body}");
    let (resp, _) = send(
        "POST",
        "/api/v1/query".into(),
        Some(json!({"sql": "SELECT 1", "question": "x"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The model, through the settings API; the key is write-only.
    let (resp, body) = send(
        "PUT",
        "/api/v1/settings/llm".into(),
        Some(json!({"provider": "openai", "model": "fake-model", "base_url": llm.openai_base_url(), "api_key": "sk-http-secret"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{body}");
    assert!(!body.contains("sk-http-secret"));
    assert_eq!(json(body.as_bytes())["api_key_set"], true);
    let (_, body) = send("GET", "/api/v1/settings/llm".into(), None).await;
    assert!(!body.contains("sk-http-secret") && body.contains("fake-model"));

    let (resp, _) = send(
        "POST",
        "/api/v1/query?wait=30".into(),
        Some(json!({"sql": "CREATE TABLE main.orders AS SELECT i AS id, i * 2 AS amount FROM range(10) t(i)"})),
    )
    .await;
    assert!(resp.status().is_success());

    // The catalog of actions.
    let (_, body) = send("GET", "/api/v1/actions".into(), None).await;
    let actions = json(body.as_bytes());
    let find = |name: &str| {
        actions
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("query.run")["writes"], false);
    assert_eq!(find("analysis.save")["writes"], true);
    assert_eq!(find("analysis.save")["tool"], "analysis_save");

    // A question: 202 with the query job's links; its events stream every step; the answer arrives.
    llm.push(call(
        "a",
        "query_run",
        json!({"sql": "SELECT sum(amount) AS total FROM main.orders"}),
    ))
    .push(call(
        "b",
        "analysis_save",
        json!({"id": "totals", "sql": "SELECT sum(amount) AS total FROM main.orders"}),
    ))
    .push(Behavior::text(&["The total is 90; ", "saved as an analysis."]));
    let (resp, body) = send(
        "POST",
        "/api/v1/query".into(),
        Some(json!({"question": "What is the total amount?"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "{body}");
    let job = json(body.as_bytes());
    assert_eq!(job["kind"], "agent_turn");
    assert_eq!(job["question"], "What is the total amount?");
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["links"]["events"], format!("/api/v1/query/{id}/events"));

    // The save waits for a person: decided over HTTP.
    let approval = poll_async(Duration::from_secs(20), || async {
        let (_, body) = send("GET", "/api/v1/approvals".into(), None).await;
        json(body.as_bytes()).as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!(approval["action"], "analysis.save");
    assert_eq!(approval["run"], id.as_str());
    let (resp, body) = send(
        "POST",
        format!("/api/v1/approvals/{}", approval["id"].as_str().unwrap()),
        Some(json!({"decision": "maybe"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (resp, body) = send(
        "POST",
        format!("/api/v1/approvals/{}", approval["id"].as_str().unwrap()),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{body}");

    let (resp, body) = send("GET", format!("/api/v1/query/{id}/events"), None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let events = sse(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "queued",
        "started",
        "schema",
        "tool_call",
        "tool_result",
        "approval_requested",
        "approval_decided",
        "text",
        "answer",
        "completed",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert_eq!(names.last(), Some(&"completed"));
    let answer = events.iter().find(|(n, _)| n == "answer").unwrap();
    assert_eq!(answer.1["data"]["text"], "The total is 90; saved as an analysis.");
    // Resumable: after the 3rd event, the rest.
    let mut r = req("GET", &format!("/api/v1/query/{id}/events"), None, None);
    r.headers_mut().insert("last-event-id", "3".parse().unwrap());
    let (_, rest) = route(&router, r).await;
    assert_eq!(sse(&String::from_utf8_lossy(&rest)).len(), events.len() - 3);

    let (_, body) = send("GET", format!("/api/v1/query/{id}"), None).await;
    let turn = json(body.as_bytes());
    assert_eq!(turn["status"], "succeeded");
    assert_eq!(turn["sql"], "SELECT sum(amount) AS total FROM main.orders");
    assert_eq!(turn["answer"]["preview"]["rows"][0][0], 90);
    assert_eq!(turn["answer"]["actions"][1]["approval"]["decision"], "approved");
    let conversation = turn["answer"]["conversation_id"].as_str().unwrap().to_owned();

    // The conversation, with its messages; a follow-up through its messages endpoint; delete.
    let (_, body) = send("GET", format!("/api/v1/chat/sessions/{conversation}"), None).await;
    let session = json(body.as_bytes());
    assert_eq!(session["messages"].as_array().unwrap().len(), 2);
    assert_eq!(
        session["messages"][1]["sql"],
        "SELECT sum(amount) AS total FROM main.orders"
    );
    llm.push(Behavior::text(&["Still 90."]));
    let (resp, _) = send(
        "POST",
        format!("/api/v1/chat/sessions/{conversation}/messages"),
        Some(json!({"question": "And now?"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let (_, body) = send("GET", "/api/v1/chat/sessions".into(), None).await;
    assert_eq!(json(body.as_bytes()).as_array().unwrap().len(), 1);
    let (resp, _) = send("DELETE", format!("/api/v1/chat/sessions/{conversation}"), None).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (resp, _) = send("GET", format!("/api/v1/chat/sessions/{conversation}"), None).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The action catalog works for people too.
    let (resp, body) = send(
        "POST",
        "/api/v1/actions/query.run".into(),
        Some(json!({"args": {"sql": "SELECT count(*) AS n FROM main.orders"}})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{body}");
    assert_eq!(json(body.as_bytes())["preview"]["rows"][0][0], 10);
    let (_, body) = send("GET", "/api/v1/eval/sets".into(), None).await;
    let sets = json(body.as_bytes());
    assert!(sets
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "chinook" && s["questions"].as_u64() >= Some(40)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_asks_streams_the_answer_and_prints_sql_and_a_table() {
    let sandbox = Sandbox::new();
    let llm = FakeLlmServer::start().await.unwrap();
    llm.push(call("q", "query_run", json!({"sql": "SELECT 6 * 7 AS answer"})))
        .push(Behavior::text(&["The answer ", "is 42."]));
    let base = llm.openai_base_url();
    let out = tokio::task::spawn_blocking({
        let cmd = sandbox.cmd();
        move || {
            let mut cmd = cmd;
            cmd.env("PLUTODUCK_LLM__PROVIDER", "openai")
                .env("PLUTODUCK_LLM__MODEL", "fake-model")
                .env("PLUTODUCK_LLM__BASE_URL", base)
                .args(["ask", "What is six times seven?", "--yes"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("The answer is 42."), "{stdout}");
    assert!(stdout.contains("SELECT 6 * 7 AS answer"), "{stdout}");
    assert!(
        stdout.contains("answer") && stdout.contains("42"),
        "the table: {stdout}"
    );
    assert!(stdout.contains("--conversation"), "{stdout}");

    // No model: one line and the exit code of `unavailable`.
    let out = tokio::task::spawn_blocking({
        let cmd = sandbox.cmd();
        move || {
            let mut cmd = cmd;
            cmd.args(["ask", "Anything?"]).output().unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no language model is configured"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_evaluates_another_model_than_the_configured_one() {
    let sandbox = Sandbox::new();
    let llm = FakeLlmServer::start().await.unwrap();
    // A model that never writes SQL: every question is an error of generation, none is asked twice.
    llm.always(Behavior::text(&["I do not know."]));
    let base = llm.openai_base_url();
    let datasets = crate::helpers::required_env("PLUTODUCK_TEST_DATASETS");
    let out = tokio::task::spawn_blocking({
        let cmd = sandbox.cmd();
        move || {
            let mut cmd = cmd;
            cmd.env("PLUTODUCK_EVAL__DATASETS_DIR", datasets)
                .args([
                    "eval",
                    "chinook",
                    "--limit",
                    "3",
                    "--json",
                    "--provider",
                    "openai",
                    "--model",
                    "fake-model",
                ])
                .args(["--base-url", &base])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["set"], "chinook");
    assert_eq!(report["totals"]["questions"], 3);
    assert_eq!(report["totals"]["correct"], 0);
    assert_eq!(report["totals"]["errors"], 3);
    assert_eq!(
        llm.chat_requests().len(),
        3,
        "the overriding model was asked each question once"
    );
}
