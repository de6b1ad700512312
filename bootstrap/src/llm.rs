//! Builds the agent's model from settings: the adapters, each wrapped in the one resilience layer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pluto_duck_application::llm::{LlmPolicy, ResilientLlm};
use pluto_duck_application::ports::{LlmError, LlmProvider, LlmProviders, LlmSettings};
use pluto_duck_llm_ollama::{OllamaConfig, OllamaLlm};
use pluto_duck_llm_openai::{OpenAiConfig, OpenAiLlm, OPENAI_BASE_URL};
use pluto_duck_llm_scripted::ScriptedLlm;

use crate::config::LlmSection;

pub const OLLAMA_BASE_URL: &str = "http://127.0.0.1:11434";

pub struct Providers {
    policy: LlmPolicy,
    context_window: Option<u64>,
}

impl Providers {
    pub fn new(section: &LlmSection) -> Self {
        Self {
            policy: LlmPolicy {
                max_attempts: section.max_attempts.max(1),
                first_delta_timeout: Duration::from_secs(section.first_token_timeout_secs.max(1)),
                idle_timeout: Duration::from_secs(section.idle_timeout_secs.max(1)),
                deadline: Duration::from_secs(section.call_timeout_secs.max(1)),
                ..LlmPolicy::default()
            },
            context_window: section.context_window,
        }
    }
}

impl LlmProviders for Providers {
    fn build(&self, s: &LlmSettings) -> Result<Arc<dyn LlmProvider>, LlmError> {
        let inner: Arc<dyn LlmProvider> = match s.provider.as_str() {
            "openai" => {
                let mut c = OpenAiConfig::new(s.base_url.clone().unwrap_or_else(|| OPENAI_BASE_URL.into()), &s.model);
                c.api_key = s.api_key.clone();
                Arc::new(OpenAiLlm::new(c)?)
            }
            "ollama" => {
                let mut c = OllamaConfig::new(s.base_url.clone().unwrap_or_else(|| OLLAMA_BASE_URL.into()), &s.model);
                c.api_key = s.api_key.clone();
                c.num_ctx = self.context_window;
                Arc::new(OllamaLlm::new(c)?)
            }
            "scripted" => {
                let path = s.script.as_deref().ok_or_else(|| {
                    LlmError::NotConfigured("the scripted provider needs `script`: a YAML file".into())
                })?;
                Arc::new(ScriptedLlm::from_file(&PathBuf::from(path))?)
            }
            "" | "none" => return Err(LlmError::NotConfigured("no provider is set".into())),
            other => {
                return Err(LlmError::NotConfigured(format!(
                    "unknown provider {other:?} (openai, ollama, scripted)"
                )))
            }
        };
        Ok(Arc::new(ResilientLlm::new(inner, self.policy.clone())))
    }
}
