//! Ollama's NDJSON reply as `ChatDelta`s.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use ollama_rs::generation::chat::ChatMessageResponse;
use pluto_duck_application::ports::{ChatDelta, ChatStream, LlmError, TokenUsage};
use serde_json::Value;

use crate::errors::{shorten, Errors};
use crate::wire::finish_reason;

/// Reads lines as they complete (a chunk may end mid-line, or mid-character).
#[derive(Default)]
pub(crate) struct Lines {
    buffer: Vec<u8>,
}

impl Lines {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        let end = self.buffer.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
        line.pop();
        Some(line)
    }

    /// What is left once the body has ended.
    pub fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }
}

#[derive(Default)]
pub(crate) struct Assembly {
    calls: u32,
    done: bool,
}

impl Assembly {
    /// The deltas of one line; a `done` line completes the reply.
    pub fn line(&mut self, line: &[u8], out: &mut VecDeque<Result<ChatDelta, LlmError>>) {
        let text = String::from_utf8_lossy(line);
        if text.trim().is_empty() {
            return;
        }
        let value: Value = match serde_json::from_str(&text) {
            Ok(value) => value,
            Err(e) => {
                out.push_back(Err(LlmError::Malformed(format!("{e} in {:?}", shorten(&text)))));
                return;
            }
        };
        if let Some(error) = value.get("error") {
            let message = error.as_str().map(str::to_string).unwrap_or_else(|| error.to_string());
            out.push_back(Err(LlmError::Upstream(format!(
                "error in the reply: {}",
                shorten(&message)
            ))));
            return;
        }
        let response: ChatMessageResponse = match serde_json::from_value(value.clone()) {
            Ok(response) => response,
            Err(e) => {
                out.push_back(Err(LlmError::Malformed(format!("{e} in {:?}", shorten(&text)))));
                return;
            }
        };
        if !response.message.content.is_empty() {
            out.push_back(Ok(ChatDelta::Text(response.message.content)));
        }
        for (i, call) in response.message.tool_calls.into_iter().enumerate() {
            let index = self.calls;
            self.calls += 1;
            // Newer Ollama versions give calls an id; ollama-rs's type has no field for it.
            let id = value
                .pointer(&format!("/message/tool_calls/{i}/id"))
                .and_then(|id| id.as_str())
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{index}"));
            out.push_back(Ok(ChatDelta::ToolCallStart {
                index,
                id,
                name: call.function.name,
            }));
            let fragment = match call.function.arguments {
                Value::String(text) => text,
                other => other.to_string(),
            };
            out.push_back(Ok(ChatDelta::ToolCallArgs { index, fragment }));
        }
        if response.done {
            self.done = true;
            // Read from the line itself: ollama-rs's final-data type needs every count, and Ollama leaves out
            // those that are zero (a cached prompt); it has no `done_reason` either.
            let count = |name: &str| {
                value
                    .get(name)
                    .and_then(Value::as_u64)
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            };
            let (prompt, completion) = (count("prompt_eval_count"), count("eval_count"));
            if prompt.is_some() || completion.is_some() {
                out.push_back(Ok(ChatDelta::Usage(TokenUsage {
                    prompt: prompt.unwrap_or(0),
                    completion: completion.unwrap_or(0),
                })));
            }
            let reason = value.get("done_reason").and_then(Value::as_str);
            out.push_back(Ok(ChatDelta::Finish(finish_reason(reason, self.calls > 0))));
        }
    }
}

struct State<S> {
    body: S,
    lines: Lines,
    assembly: Assembly,
    out: VecDeque<Result<ChatDelta, LlmError>>,
    /// The body has ended or failed: only `out` is left to give.
    ended: bool,
    errors: Errors,
}

pub(crate) fn deltas<S>(body: S, errors: Errors) -> ChatStream
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static,
{
    let state = State {
        body,
        lines: Lines::default(),
        assembly: Assembly::default(),
        out: VecDeque::new(),
        ended: false,
        errors,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(item) = s.out.pop_front() {
                if item.is_err() {
                    s.out.clear();
                    s.ended = true;
                }
                return Some((item, s));
            }
            // Nothing is read past the closing object or an error.
            if s.ended || s.assembly.done {
                return None;
            }
            if let Some(line) = s.lines.next_line() {
                s.assembly.line(&line, &mut s.out);
                continue;
            }
            match s.body.next().await {
                Some(Ok(bytes)) => s.lines.push(&bytes),
                Some(Err(error)) => {
                    let error = match s.errors.transport(error) {
                        LlmError::Upstream(m) => LlmError::Upstream(format!("the reply broke off: {m}")),
                        other => other,
                    };
                    s.out.push_back(Err(error));
                }
                None => {
                    s.ended = true;
                    let rest = s.lines.rest();
                    s.assembly.line(&rest, &mut s.out);
                    if !s.assembly.done && s.out.iter().all(|item| item.is_ok()) {
                        s.out
                            .push_back(Err(LlmError::Upstream("the reply ended before it was done".into())));
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pluto_duck_application::ports::FinishReason;

    #[test]
    fn lines_split_across_chunks_and_characters() {
        let mut lines = Lines::default();
        let text = "{\"a\": \"é\"}\n{\"b\"";
        let bytes = text.as_bytes();
        // Cut inside the two-byte 'é'.
        let cut = text.find('é').unwrap() + 1;
        lines.push(&bytes[..cut]);
        assert_eq!(lines.next_line(), None);
        lines.push(&bytes[cut..]);
        assert_eq!(lines.next_line().unwrap(), "{\"a\": \"é\"}".as_bytes());
        assert_eq!(lines.next_line(), None);
        assert_eq!(lines.rest(), b"{\"b\"");
    }

    #[test]
    fn tool_calls_usage_and_finish_from_lines() {
        let mut assembly = Assembly::default();
        let mut out = VecDeque::new();
        assembly.line(
            br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_x","function":{"name":"a","arguments":{"n":1}}},{"function":{"name":"b","arguments":{}}}]},"done":false}"#,
            &mut out,
        );
        // A cached prompt: no prompt_eval_count.
        assembly.line(
            br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":7}"#,
            &mut out,
        );
        let start = |index, id: &str, name: &str| {
            Ok(ChatDelta::ToolCallStart {
                index,
                id: id.into(),
                name: name.into(),
            })
        };
        let args = |index, fragment: &str| {
            Ok(ChatDelta::ToolCallArgs {
                index,
                fragment: fragment.into(),
            })
        };
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            vec![
                start(0, "call_x", "a"),
                args(0, "{\"n\":1}"),
                start(1, "call_1", "b"),
                args(1, "{}"),
                Ok(ChatDelta::Usage(TokenUsage {
                    prompt: 0,
                    completion: 7
                })),
                Ok(ChatDelta::Finish(FinishReason::ToolCalls)),
            ]
        );
    }

    #[test]
    fn a_line_that_is_not_a_chat_response_is_malformed() {
        let mut out = VecDeque::new();
        Assembly::default().line(br#"{"model": 3}"#, &mut out);
        assert!(matches!(out.pop_front(), Some(Err(LlmError::Malformed(_)))));
    }
}
