//! OpenAI's chunks as `ChatDelta`s.

use std::collections::{BTreeMap, VecDeque};

use async_openai::error::OpenAIError;
use futures::{Stream, StreamExt};
use pluto_duck_application::ports::{ChatDelta, ChatStream, FinishReason, LlmError, TokenUsage};

use crate::errors::Errors;
use crate::wire::{finish_reason, Chunk};

#[derive(Default)]
struct ToolState {
    id: Option<String>,
    name: String,
    started: bool,
    /// Arguments received before the call's name (some servers send them in that order).
    early_arguments: String,
}

/// What the chunks so far say; the usage and the finish are held back to the end of the stream, since OpenAI
/// sends the usage chunk after the one with the finish reason.
#[derive(Default)]
pub(crate) struct Assembly {
    tools: BTreeMap<u32, ToolState>,
    usage: Option<TokenUsage>,
    finish: Option<FinishReason>,
}

impl Assembly {
    /// The deltas one chunk brings.
    pub fn chunk(&mut self, chunk: Chunk, out: &mut VecDeque<Result<ChatDelta, LlmError>>) {
        if let Some(error) = chunk.error {
            let message = error
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| error.to_string());
            out.push_back(Err(LlmError::Upstream(format!("error in the reply: {message}"))));
            return;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(TokenUsage {
                prompt: usage.prompt_tokens,
                completion: usage.completion_tokens,
            });
        }
        // Only one choice is asked for (`n` is left at 1).
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push_back(Ok(ChatDelta::Text(text)));
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    let index = call.index;
                    let tool = self.tools.entry(index).or_default();
                    if tool.id.is_none() {
                        tool.id = call.id.filter(|id| !id.is_empty());
                    }
                    let (name, arguments) = call
                        .function
                        .map(|f| (f.name.unwrap_or_default(), f.arguments.unwrap_or_default()))
                        .unwrap_or_default();
                    if tool.started {
                        if !arguments.is_empty() {
                            out.push_back(Ok(ChatDelta::ToolCallArgs {
                                index,
                                fragment: arguments,
                            }));
                        }
                        continue;
                    }
                    tool.name.push_str(&name);
                    tool.early_arguments.push_str(&arguments);
                    if !tool.name.is_empty() {
                        tool.started = true;
                        out.push_back(Ok(ChatDelta::ToolCallStart {
                            index,
                            id: tool.id.clone().unwrap_or_else(|| format!("call_{index}")),
                            name: tool.name.clone(),
                        }));
                        if !tool.early_arguments.is_empty() {
                            out.push_back(Ok(ChatDelta::ToolCallArgs {
                                index,
                                fragment: std::mem::take(&mut tool.early_arguments),
                            }));
                        }
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(&reason));
            }
        }
    }

    /// The closing deltas once the stream has ended.
    pub fn end(self, out: &mut VecDeque<Result<ChatDelta, LlmError>>) {
        let Some(mut finish) = self.finish else {
            out.push_back(Err(LlmError::Upstream(
                "the reply ended before it was finished (no finish reason)".into(),
            )));
            return;
        };
        if let Some((index, _)) = self.tools.iter().find(|(_, t)| !t.started) {
            out.push_back(Err(LlmError::Malformed(format!("tool call {index} has no name"))));
            return;
        }
        // Some servers say `stop` after tool calls: the calls are what the caller must act on.
        if finish == FinishReason::Stop && !self.tools.is_empty() {
            finish = FinishReason::ToolCalls;
        }
        if let Some(usage) = self.usage {
            out.push_back(Ok(ChatDelta::Usage(usage)));
        }
        out.push_back(Ok(ChatDelta::Finish(finish)));
    }
}

struct State<S> {
    chunks: S,
    assembly: Option<Assembly>,
    out: VecDeque<Result<ChatDelta, LlmError>>,
    errors: Errors,
}

/// The reply's deltas; the first error ends it.
pub(crate) fn deltas<S>(chunks: S, errors: Errors) -> ChatStream
where
    S: Stream<Item = Result<Chunk, OpenAIError>> + Send + Unpin + 'static,
{
    let state = State {
        chunks,
        assembly: Some(Assembly::default()),
        out: VecDeque::new(),
        errors,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(item) = s.out.pop_front() {
                if item.is_err() {
                    s.out.clear();
                    s.assembly = None;
                }
                return Some((item, s));
            }
            let assembly = s.assembly.as_mut()?;
            match s.chunks.next().await {
                Some(Ok(chunk)) => assembly.chunk(chunk, &mut s.out),
                Some(Err(error)) => s.out.push_back(Err(s.errors.map(error))),
                None => {
                    if let Some(assembly) = s.assembly.take() {
                        assembly.end(&mut s.out);
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(chunks: Vec<serde_json::Value>) -> Vec<Result<ChatDelta, LlmError>> {
        let mut assembly = Assembly::default();
        let mut out = VecDeque::new();
        for chunk in chunks {
            assembly.chunk(serde_json::from_value(chunk).unwrap(), &mut out);
        }
        assembly.end(&mut out);
        out.into_iter().collect()
    }

    #[test]
    fn arguments_before_the_name_wait_for_it_and_a_missing_id_is_made_up() {
        let out = run(vec![
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ": 1}"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ]);
        assert_eq!(
            out,
            vec![
                Ok(ChatDelta::ToolCallStart {
                    index: 0,
                    id: "call_0".into(),
                    name: "f".into()
                }),
                Ok(ChatDelta::ToolCallArgs {
                    index: 0,
                    fragment: "{\"a\": 1}".into()
                }),
                // `stop` after tool calls reads as tool calls.
                Ok(ChatDelta::Finish(FinishReason::ToolCalls)),
            ]
        );
    }

    #[test]
    fn usage_in_any_chunk_comes_out_once_before_the_finish() {
        let out = run(vec![
            json!({"choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
        ]);
        assert_eq!(
            out,
            vec![
                Ok(ChatDelta::Text("hi".into())),
                Ok(ChatDelta::Usage(TokenUsage {
                    prompt: 5,
                    completion: 2
                })),
                Ok(ChatDelta::Finish(FinishReason::Length)),
            ]
        );
    }

    #[test]
    fn a_stream_without_finish_was_cut() {
        let out = run(vec![json!({"choices": [{"index": 0, "delta": {"content": "hi"}}]})]);
        assert!(matches!(out.last(), Some(Err(LlmError::Upstream(_)))), "{out:?}");
    }

    #[test]
    fn an_error_object_in_the_stream_is_upstream() {
        let out = run(vec![
            json!({"error": {"message": "overloaded", "type": "server_error"}}),
        ]);
        assert!(
            matches!(&out[0], Err(LlmError::Upstream(m)) if m.contains("overloaded")),
            "{out:?}"
        );
    }
}
