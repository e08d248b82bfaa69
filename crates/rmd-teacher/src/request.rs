//! What is sent to a chat backend and what comes back, independent of any wire format.

use rmd_core::Message;
pub use rmd_core::{GeneratedToken, TeacherLogprobs, TokenLogprob};
use serde::{Deserialize, Serialize};

/// Sampling parameters of one request. `None` fields are not sent, so the server's
/// defaults apply. The vLLM extras (`top_k`, `min_p`, `repetition_penalty`,
/// `chat_template_kwargs`) are ignored or rejected by servers that lack them; put
/// anything else a server understands into `extra`, which is merged into the body as is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// vLLM/SGLang: -1 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    /// Passed to the server's chat template, e.g. `{ enable_thinking = false }` for Qwen3 on vLLM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
    /// Further body fields, sent verbatim.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Sampling {
    /// Deterministic decoding: temperature 0.
    pub fn greedy(max_tokens: u32) -> Self {
        Self { temperature: Some(0.0), max_tokens: Some(max_tokens), ..Self::default() }
    }

    /// The reference implementation's settings for the teacher's own answer:
    /// T 0.7, top-p 0.8, top-k 20, 1024 new tokens.
    pub fn reference_default() -> Self {
        Self {
            temperature: Some(0.7),
            top_p: Some(0.8),
            top_k: Some(20),
            max_tokens: Some(1024),
            ..Self::default()
        }
    }
}

/// One chat-completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub sampling: Sampling,
    /// Ask for this many alternatives per generated token (OpenAI `top_logprobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
}

impl ChatRequest {
    pub fn new(messages: Vec<Message>, sampling: Sampling) -> Self {
        Self { messages, sampling, top_logprobs: None }
    }
}

/// Tokens counted by the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// The answer to a [`ChatRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The assistant message content (may contain `<think>` blocks; parsers strip them).
    pub text: String,
    /// Separate reasoning returned by servers with a reasoning parser (`reasoning_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub usage: Usage,
    /// Per generated token, the sampled token and the top alternatives (when requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<TeacherLogprobs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Served from the response cache (set by the cache, never stored in it).
    #[serde(skip)]
    pub cached: bool,
}

impl Completion {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            reasoning: None,
            finish_reason: Some("stop".into()),
            usage: Usage::default(),
            logprobs: None,
            model: None,
            cached: false,
        }
    }

    /// The generation stopped at the token limit, so its tail is missing.
    pub fn truncated(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}
