//! OpenAI's chat completions wire format, as api.openai.com answers.

use serde_json::{json, Value};

use crate::{Dialect, Reply, CREATED};

pub(crate) struct OpenAi;

const ID: &str = "chatcmpl-fake";
const FINGERPRINT: &str = "fp_fake";

fn model(request: &Value) -> Value {
    request.get("model").cloned().unwrap_or(Value::Null)
}

fn finish(reply: &Reply) -> String {
    reply.finish.clone().unwrap_or_else(|| {
        if reply.tool_calls.is_empty() {
            "stop".into()
        } else {
            "tool_calls".into()
        }
    })
}

fn usage(reply: &Reply) -> Value {
    match reply.usage {
        Some((prompt, completion)) => json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }),
        None => Value::Null,
    }
}

fn wants_usage(request: &Value) -> bool {
    request.pointer("/stream_options/include_usage") == Some(&Value::Bool(true))
}

impl Dialect for OpenAi {
    fn whole(&self, request: &Value, reply: &Reply) -> Value {
        let text = reply.text_chunks.concat();
        let mut message = json!({
            "role": "assistant",
            "content": if text.is_empty() && !reply.tool_calls.is_empty() { Value::Null } else { json!(text) },
            "refusal": null,
            "annotations": [],
        });
        if !reply.tool_calls.is_empty() {
            message["tool_calls"] = reply
                .tool_calls
                .iter()
                .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments()}}))
                .collect();
        }
        json!({
            "id": ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": model(request),
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish(reply)}],
            "usage": usage(reply),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        })
    }

    fn frames(&self, request: &Value, reply: &Reply) -> Vec<String> {
        let with_usage = wants_usage(request);
        let chunk = |delta: Value, finish_reason: Value| {
            let mut chunk = json!({
                "id": ID,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model(request),
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
            });
            if with_usage {
                chunk["usage"] = Value::Null;
            }
            chunk
        };
        let mut chunks = Vec::new();
        // The first chunk names the role; its content is "" for a text reply, null for a tool-call one.
        let role_content = if reply.text_chunks.is_empty() && !reply.tool_calls.is_empty() {
            Value::Null
        } else {
            json!("")
        };
        chunks.push(chunk(
            json!({"role": "assistant", "content": role_content, "refusal": null}),
            Value::Null,
        ));
        for text in &reply.text_chunks {
            chunks.push(chunk(json!({"content": text}), Value::Null));
        }
        // Calls one after the other: a head with id, type, name and empty arguments, then argument pieces.
        for (index, call) in reply.tool_calls.iter().enumerate() {
            chunks.push(chunk(
                json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}]}),
                Value::Null,
            ));
            for piece in &call.argument_pieces {
                chunks.push(chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                    Value::Null,
                ));
            }
        }
        chunks.push(chunk(json!({}), json!(finish(reply))));
        if with_usage {
            chunks.push(json!({
                "id": ID,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model(request),
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": [],
                "usage": if reply.usage.is_some() { usage(reply) } else { usage(&Reply::default().with_usage(0, 0)) },
            }));
        }
        let mut frames: Vec<String> = chunks.into_iter().map(|c| format!("data: {c}\n\n")).collect();
        frames.push("data: [DONE]\n\n".into());
        frames
    }

    fn malformed_frame(&self) -> String {
        "data: {\"id\": \"chatcmpl-fake\", \"choices\": [{\"index\": 0, \"delta\": {\"content\": \"tr\n\n".into()
    }

    fn error_frame(&self, message: &str) -> String {
        let error = json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
        format!("data: {error}\n\n")
    }

    fn error_body(&self, status: u16, message: &str) -> Value {
        let (kind, code) = match status {
            401 => ("invalid_request_error", json!("invalid_api_key")),
            403 => ("invalid_request_error", json!("unsupported_country_region_territory")),
            404 => ("invalid_request_error", json!("model_not_found")),
            // OpenAI's answer when the account has no credit left.
            429 if message.contains("exceeded your current quota") => {
                ("insufficient_quota", json!("insufficient_quota"))
            }
            429 => ("requests", json!("rate_limit_exceeded")),
            400..=499 => ("invalid_request_error", Value::Null),
            _ => ("server_error", Value::Null),
        };
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
    }

    fn content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }

    fn streams(&self, request: &Value) -> bool {
        request.get("stream") == Some(&Value::Bool(true))
    }
}

pub(crate) fn models(models: &[String]) -> Value {
    json!({
        "object": "list",
        "data": models
            .iter()
            .map(|m| json!({"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}))
            .collect::<Vec<_>>(),
    })
}
