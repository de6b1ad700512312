//! The YAML script: ordered entries, the first that matches the conversation answers.

use std::time::Duration;

use pluto_duck_application::ports::{FinishReason, LlmError, TokenUsage};
use regex::Regex;
use serde::Deserialize;

use crate::{ScriptedReply, ScriptedToolCall};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScriptFile {
    /// The model name the provider reports.
    #[serde(default)]
    pub model: Option<String>,
    pub entries: Vec<EntryFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Speaker {
    User,
    Tool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntryFile {
    /// A regular expression searched in the latest user or tool message; no pattern matches any.
    #[serde(default, rename = "match")]
    pub pattern: Option<String>,
    /// Only when the latest user-or-tool message is from this role.
    #[serde(default)]
    pub role: Option<Speaker>,
    /// Used at most this many times; then the next entries are tried.
    #[serde(default)]
    pub times: Option<u32>,
    pub reply: ReplyFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplyFile {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ToolCallFile>,
    #[serde(default)]
    pub usage: Option<UsageFile>,
    /// `stop`, `length`, `tool_calls`, `content_filter` or any other word; by default `tool_calls` when the reply
    /// calls tools, else `stop`.
    #[serde(default)]
    pub finish: Option<String>,
    /// Fail instead of replying.
    #[serde(default)]
    pub error: Option<ErrorFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolCallFile {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// A mapping (sent as JSON) or a string (sent as it is, valid JSON or not).
    #[serde(default)]
    pub arguments: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageFile {
    pub prompt: u32,
    pub completion: u32,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorKindFile {
    NotConfigured,
    Unreachable,
    Auth,
    RateLimited,
    QuotaExceeded,
    Upstream,
    Timeout,
    Malformed,
    Invalid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorFile {
    pub kind: ErrorKindFile,
    #[serde(default)]
    pub message: Option<String>,
    /// For `rate_limited`.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

pub(crate) struct Entry {
    pub pattern: Option<Regex>,
    pub role: Option<Speaker>,
    pub times: Option<u32>,
    pub used: u32,
    pub reply: ScriptedReply,
}

pub(crate) fn finish_reason(word: &str) -> FinishReason {
    match word {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_string()),
    }
}

fn error(file: ErrorFile) -> LlmError {
    let message = file.message.unwrap_or_else(|| "scripted failure".into());
    match file.kind {
        ErrorKindFile::NotConfigured => LlmError::NotConfigured(message),
        ErrorKindFile::Unreachable => LlmError::Unreachable(message),
        ErrorKindFile::Auth => LlmError::Auth(message),
        ErrorKindFile::RateLimited => LlmError::RateLimited {
            retry_after: file.retry_after_ms.map(Duration::from_millis),
            message,
        },
        ErrorKindFile::QuotaExceeded => LlmError::QuotaExceeded(message),
        ErrorKindFile::Upstream => LlmError::Upstream(message),
        ErrorKindFile::Timeout => LlmError::Timeout(message),
        ErrorKindFile::Malformed => LlmError::Malformed(message),
        ErrorKindFile::Invalid => LlmError::Invalid(message),
    }
}

fn arguments(value: Option<serde_yaml::Value>) -> Result<String, String> {
    match value {
        None => Ok("{}".into()),
        Some(serde_yaml::Value::String(text)) => Ok(text),
        Some(value) => {
            let json: serde_json::Value = serde_yaml::from_value(value).map_err(|e| e.to_string())?;
            Ok(json.to_string())
        }
    }
}

/// The entries of a script, checked: every pattern compiles, every reply says something.
pub(crate) fn parse(yaml: &str) -> Result<(Option<String>, Vec<Entry>), String> {
    let file: ScriptFile = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    for (n, entry) in file.entries.into_iter().enumerate() {
        let at = |what: String| format!("entry {}: {what}", n + 1);
        let pattern = entry
            .pattern
            .map(|p| Regex::new(&p).map_err(|e| at(format!("bad pattern: {e}"))))
            .transpose()?;
        let reply = entry.reply;
        let mut tool_calls = Vec::new();
        for call in reply.tool_calls {
            tool_calls.push(ScriptedToolCall {
                id: call.id,
                arguments: arguments(call.arguments).map_err(|e| at(format!("tool {:?}: {e}", call.name)))?,
                name: call.name,
            });
        }
        if reply.text.is_empty() && tool_calls.is_empty() && reply.error.is_none() {
            return Err(at("the reply has no text, no tool call and no error".into()));
        }
        entries.push(Entry {
            pattern,
            role: entry.role,
            times: entry.times,
            used: 0,
            reply: ScriptedReply {
                text: reply.text,
                tool_calls,
                usage: reply.usage.map(|u| TokenUsage {
                    prompt: u.prompt,
                    completion: u.completion,
                }),
                finish: reply.finish.as_deref().map(finish_reason),
                error: reply.error.map(error),
            },
        });
    }
    if entries.is_empty() {
        return Err("the script has no entries".into());
    }
    Ok((file.model, entries))
}
