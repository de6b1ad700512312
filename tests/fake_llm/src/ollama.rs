//! Ollama's native `/api/chat` wire format.

use serde_json::{json, Map, Value};

use crate::{Dialect, Reply};

pub(crate) struct Ollama;

const CREATED_AT: &str = "2025-01-01T00:00:00.000000000Z";

fn model(request: &Value) -> Value {
    request.get("model").cloned().unwrap_or(Value::Null)
}

/// Ollama's tool calls carry the arguments as a JSON object, not as text.
fn tool_calls(reply: &Reply) -> Value {
    reply
        .tool_calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            let arguments: Value = serde_json::from_str(&call.arguments()).unwrap_or(Value::Object(Map::new()));
            json!({"function": {"index": index, "name": call.name, "arguments": arguments}})
        })
        .collect()
}

/// The closing fields: Ollama leaves out a count that is zero.
fn done_fields(object: &mut Value, reply: &Reply) {
    object["done"] = json!(true);
    object["done_reason"] = json!(reply.finish.clone().unwrap_or_else(|| "stop".into()));
    object["total_duration"] = json!(1_200_000_000u64);
    object["load_duration"] = json!(20_000_000u64);
    object["prompt_eval_duration"] = json!(300_000_000u64);
    object["eval_duration"] = json!(800_000_000u64);
    if let Some((prompt, completion)) = reply.usage {
        if prompt > 0 {
            object["prompt_eval_count"] = json!(prompt);
        }
        if completion > 0 {
            object["eval_count"] = json!(completion);
        }
    }
}

impl Dialect for Ollama {
    fn whole(&self, request: &Value, reply: &Reply) -> Value {
        let mut message = json!({"role": "assistant", "content": reply.text_chunks.concat()});
        if !reply.tool_calls.is_empty() {
            message["tool_calls"] = tool_calls(reply);
        }
        let mut object = json!({"model": model(request), "created_at": CREATED_AT, "message": message});
        done_fields(&mut object, reply);
        object
    }

    fn frames(&self, request: &Value, reply: &Reply) -> Vec<String> {
        let line = |message: Value| json!({"model": model(request), "created_at": CREATED_AT, "message": message, "done": false});
        let mut lines = Vec::new();
        for text in &reply.text_chunks {
            lines.push(line(json!({"role": "assistant", "content": text})));
        }
        // Ollama parses the calls out of the model's output and sends them together, each whole.
        if !reply.tool_calls.is_empty() {
            lines.push(line(
                json!({"role": "assistant", "content": "", "tool_calls": tool_calls(reply)}),
            ));
        }
        let mut last = json!({"model": model(request), "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": ""}});
        done_fields(&mut last, reply);
        lines.push(last);
        lines.into_iter().map(|l| format!("{l}\n")).collect()
    }

    fn malformed_frame(&self) -> String {
        "{\"model\": \"fake-model\", \"message\": {\"role\": \"assist\n".into()
    }

    fn error_frame(&self, message: &str) -> String {
        format!("{}\n", json!({"error": message}))
    }

    fn error_body(&self, _status: u16, message: &str) -> Value {
        json!({"error": message})
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn streams(&self, request: &Value) -> bool {
        // Ollama streams unless told not to.
        request.get("stream") != Some(&Value::Bool(false))
    }
}

pub(crate) fn tags(models: &[String]) -> Value {
    json!({
        "models": models
            .iter()
            .map(|m| json!({
                "name": m,
                "model": m,
                "modified_at": CREATED_AT,
                "size": 4_661_224_676u64,
                "digest": "0000000000000000000000000000000000000000000000000000000000000000",
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                    "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
            }))
            .collect::<Vec<_>>(),
    })
}
