//! The LlmProvider contract, against the fake server speaking Ollama's protocol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use pluto_duck_application::ports::LlmProvider;
use pluto_duck_fake_llm::contract::Target;
use pluto_duck_llm_ollama::{OllamaConfig, OllamaLlm};
use secrecy::SecretString;

fn build(base_url: &str, api_key: Option<&str>) -> Arc<dyn LlmProvider> {
    let mut config = OllamaConfig::new(base_url, "fake-model");
    config.api_key = api_key.map(|k| SecretString::from(k.to_string()));
    Arc::new(OllamaLlm::new(config).unwrap())
}

fn target() -> Target {
    Target {
        build,
        base_url: |host_port| format!("http://{host_port}"),
        chat_path: "/api/chat",
    }
}

pluto_duck_fake_llm::llm_contract_tests!(target());
