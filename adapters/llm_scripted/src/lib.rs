//! `ScriptedLlm`: deterministic replies for tests and offline demos, streamed as deltas with no delay.
//!
//! From a YAML script (see [`ScriptedLlm::from_yaml`]) or from a closure over the request. Every request is
//! kept, so a test can check what would have been sent to a real model.

mod script;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use pluto_duck_application::llm::cancellable;
use pluto_duck_application::ports::{
    ChatDelta, ChatRequest, ChatStream, FinishReason, LlmError, LlmProvider, ProviderInfo, Role, TokenUsage,
};
use tokio_util::sync::CancellationToken;

use crate::script::{Entry, Speaker};

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedToolCall {
    /// By default `call_<n>`, n counting the calls this provider has made.
    pub id: Option<String>,
    pub name: String,
    /// JSON text, sent as it is.
    pub arguments: String,
}

/// One reply: text and/or tool calls, or a failure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScriptedReply {
    pub text: String,
    pub tool_calls: Vec<ScriptedToolCall>,
    pub usage: Option<TokenUsage>,
    /// By default `ToolCalls` when the reply calls tools, else `Stop`.
    pub finish: Option<FinishReason>,
    /// Returned by `chat` instead of a reply.
    pub error: Option<LlmError>,
}

impl ScriptedReply {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn tool_call(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        Self::default().and_tool_call(name, arguments)
    }

    pub fn and_tool_call(mut self, name: impl Into<String>, arguments: serde_json::Value) -> Self {
        self.tool_calls.push(ScriptedToolCall {
            id: None,
            name: name.into(),
            arguments: arguments.to_string(),
        });
        self
    }

    pub fn with_usage(mut self, prompt: u32, completion: u32) -> Self {
        self.usage = Some(TokenUsage { prompt, completion });
        self
    }

    pub fn fail(error: LlmError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

type Responder = dyn Fn(&ChatRequest) -> ScriptedReply + Send + Sync;

enum Source {
    Script(Mutex<Vec<Entry>>),
    Closure(Arc<Responder>),
}

pub struct ScriptedLlm {
    model: String,
    source: Source,
    requests: Mutex<Vec<ChatRequest>>,
    calls_made: Mutex<u32>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The text in at most three pieces, cut at spaces where there are some.
fn pieces(text: &str) -> Vec<String> {
    let chars = text.chars().count();
    if chars < 6 {
        return vec![text.to_string()];
    }
    let mut cuts = Vec::new();
    for third in [chars / 3, 2 * chars / 3] {
        let target = text.char_indices().nth(third).map_or(text.len(), |(i, _)| i);
        let cut = text[target..].find(' ').map_or(target, |i| target + i + 1);
        if cut < text.len() && cuts.last().is_none_or(|last| cut > *last) {
            cuts.push(cut);
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts {
        out.push(text[start..cut].to_string());
        start = cut;
    }
    out.push(text[start..].to_string());
    out
}

fn halves(text: &str) -> (String, String) {
    let middle = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(i, _)| i);
    (text[..middle].to_string(), text[middle..].to_string())
}

/// The latest message from the user or a tool: what a script entry is matched against.
fn latest(request: &ChatRequest) -> Option<(Speaker, &str)> {
    request.messages.iter().rev().find_map(|m| match m.role {
        Role::User => Some((Speaker::User, m.content.as_str())),
        Role::Tool => Some((Speaker::Tool, m.content.as_str())),
        _ => None,
    })
}

impl ScriptedLlm {
    /// A script such as:
    ///
    /// ```yaml
    /// model: demo                    # optional, what describe() reports
    /// entries:                       # tried in order; the first that matches answers
    ///   - match: "(?i)how many orders"   # regex on the latest user or tool message; none: any
    ///     role: user                 # optional: only when that message is the user's (or `tool`)
    ///     times: 1                   # optional: at most this many uses
    ///     reply:
    ///       text: "Let me count them."
    ///       tool_calls:
    ///         - name: run_sql
    ///           arguments: {sql: "select count(*) from orders"}
    ///       usage: {prompt: 120, completion: 18}
    ///   - role: tool
    ///     reply: {text: "There were 1,204 orders."}
    ///   - match: "fail"
    ///     reply: {error: {kind: rate_limited, retry_after_ms: 100}}
    /// ```
    pub fn from_yaml(yaml: &str) -> Result<Self, LlmError> {
        let (model, entries) =
            script::parse(yaml).map_err(|e| LlmError::NotConfigured(format!("invalid LLM script: {e}")))?;
        Ok(Self::new(
            model.unwrap_or_else(|| "scripted".into()),
            Source::Script(Mutex::new(entries)),
        ))
    }

    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        let yaml = std::fs::read_to_string(path)
            .map_err(|e| LlmError::NotConfigured(format!("cannot read the LLM script {}: {e}", path.display())))?;
        Self::from_yaml(&yaml).map_err(|e| LlmError::NotConfigured(format!("{}: {e}", path.display())))
    }

    /// Replies computed from each request.
    pub fn from_fn(respond: impl Fn(&ChatRequest) -> ScriptedReply + Send + Sync + 'static) -> Self {
        Self::new("scripted".into(), Source::Closure(Arc::new(respond)))
    }

    fn new(model: String, source: Source) -> Self {
        Self {
            model,
            source,
            requests: Mutex::new(Vec::new()),
            calls_made: Mutex::new(0),
        }
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    fn reply(&self, request: &ChatRequest) -> Result<ScriptedReply, LlmError> {
        match &self.source {
            Source::Closure(respond) => Ok(respond(request)),
            Source::Script(entries) => {
                let latest = latest(request);
                let mut entries = lock(entries);
                let total = entries.len();
                let entry = entries.iter_mut().find(|entry| {
                    let fresh = entry.times.is_none_or(|times| entry.used < times);
                    let role = match (entry.role, latest) {
                        (None, _) => true,
                        (Some(want), Some((got, _))) => want == got,
                        (Some(_), None) => false,
                    };
                    let text = latest.map_or("", |(_, text)| text);
                    let pattern = entry.pattern.as_ref().is_none_or(|p| p.is_match(text));
                    fresh && role && pattern
                });
                match entry {
                    Some(entry) => {
                        entry.used += 1;
                        Ok(entry.reply.clone())
                    }
                    None => {
                        let (who, text) = match latest {
                            Some((Speaker::User, text)) => ("user", text),
                            Some((Speaker::Tool, text)) => ("tool", text),
                            None => ("user", ""),
                        };
                        let shown: String = text.chars().take(120).collect();
                        Err(LlmError::Invalid(format!(
                            "scripted LLM: none of the {total} entries matches the latest {who} message {shown:?}"
                        )))
                    }
                }
            }
        }
    }

    fn deltas(&self, reply: ScriptedReply) -> Vec<Result<ChatDelta, LlmError>> {
        let mut deltas = Vec::new();
        if !reply.text.is_empty() {
            deltas.extend(pieces(&reply.text).into_iter().map(|t| Ok(ChatDelta::Text(t))));
        }
        let mut made = lock(&self.calls_made);
        for (index, call) in reply.tool_calls.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let id = call.id.clone().unwrap_or_else(|| format!("call_{}", *made));
            *made += 1;
            deltas.push(Ok(ChatDelta::ToolCallStart {
                index,
                id,
                name: call.name.clone(),
            }));
            let (first, second) = halves(&call.arguments);
            for fragment in [first, second].into_iter().filter(|f| !f.is_empty()) {
                deltas.push(Ok(ChatDelta::ToolCallArgs { index, fragment }));
            }
        }
        if let Some(usage) = reply.usage {
            deltas.push(Ok(ChatDelta::Usage(usage)));
        }
        let finish = reply.finish.unwrap_or(if reply.tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        });
        deltas.push(Ok(ChatDelta::Finish(finish)));
        deltas
    }
}

#[async_trait]
impl LlmProvider for ScriptedLlm {
    fn describe(&self) -> ProviderInfo {
        ProviderInfo {
            provider: "scripted".into(),
            model: self.model.clone(),
            base_url: None,
            supports_tools: true,
        }
    }

    async fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Result<ChatStream, LlmError> {
        lock(&self.requests).push(request.clone());
        if cancel.is_cancelled() {
            return Err(LlmError::Cancelled);
        }
        let reply = self.reply(&request)?;
        if let Some(error) = reply.error {
            return Err(error);
        }
        let deltas = self.deltas(reply);
        Ok(cancellable(Box::pin(futures::stream::iter(deltas)), cancel))
    }
}

#[cfg(test)]
mod tests;
