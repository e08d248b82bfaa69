//! Preference pairs and the multi-response forms that benchmarks use.

use serde::{Deserialize, Serialize};

use crate::logprobs::TeacherLogprobs;
use crate::message::Conversation;

/// Free-form metadata carried with a row (source subset, original chosen, provenance...).
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// One preference pair: a prompt and two responses, `chosen` preferred over `rejected`.
///
/// Scores are the teacher's 1-10 scores; `margin` is an explicit margin column for
/// objectives that take one (when absent they use `chosen_score - rejected_score`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferencePair {
    pub id: String,
    pub prompt: Conversation,
    pub chosen: String,
    pub rejected: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_response: Option<String>,
    /// The teacher's top-k log-probs over `teacher_response`, token by token, when synthesis
    /// recorded them (the stored-distribution source of the KL regularizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_logprobs: Option<TeacherLogprobs>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: Metadata,
}

impl PreferencePair {
    pub fn new(
        id: impl Into<String>,
        prompt: Conversation,
        chosen: impl Into<String>,
        rejected: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            prompt,
            chosen: chosen.into(),
            rejected: rejected.into(),
            chosen_score: None,
            rejected_score: None,
            margin: None,
            teacher_response: None,
            teacher_logprobs: None,
            metadata: Metadata::new(),
        }
    }

    /// The teacher's preference strength: the explicit margin if present, else the score gap.
    pub fn teacher_gap(&self) -> Option<f64> {
        teacher_gap(self.margin, self.chosen_score, self.rejected_score)
    }

    /// The benchmark subset this row belongs to, if its source recorded one.
    pub fn subset(&self) -> Option<&str> {
        self.metadata.get("subset").and_then(|v| v.as_str())
    }
}

/// The explicit `margin` if present, else `chosen_score - rejected_score` when both exist.
/// The one rule for every row type that carries teacher scores.
pub fn teacher_gap(margin: Option<f64>, chosen_score: Option<f64>, rejected_score: Option<f64>) -> Option<f64> {
    margin.or(match (chosen_score, rejected_score) {
        (Some(c), Some(r)) => Some(c - r),
        _ => None,
    })
}

/// RewardBench 2 style best-of-N: the first `num_correct` of `chosen` are correct,
/// every entry of `rejected` is incorrect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestOfN {
    pub id: String,
    pub prompt: Conversation,
    pub chosen: Vec<String>,
    pub rejected: Vec<String>,
    pub num_correct: usize,
    pub subset: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: Metadata,
}

/// The RM-Bench style variants, in the benchmark's column order.
pub const STYLE_VARIANTS: [&str; 3] = ["concise", "detailed_plain", "detailed_markdown"];

/// RM-Bench: three chosen and three rejected renderings of the same two answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StyleMatrix {
    pub id: String,
    pub prompt: Conversation,
    pub chosen: [String; 3],
    pub rejected: [String; 3],
    /// chat, math, code or safety.
    pub domain: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: Metadata,
}

/// JudgeBench's verdict between two responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JudgeLabel {
    #[serde(rename = "A>B")]
    AOverB,
    #[serde(rename = "B>A")]
    BOverA,
}

impl JudgeLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeLabel::AOverB => "A>B",
            JudgeLabel::BOverA => "B>A",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "A>B" => Some(JudgeLabel::AOverB),
            "B>A" => Some(JudgeLabel::BOverA),
            _ => None,
        }
    }
}

/// JudgeBench: two responses to a question and which is better.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgePair {
    pub id: String,
    pub prompt: Conversation,
    pub response_a: String,
    pub response_b: String,
    pub label: JudgeLabel,
    /// The source category (knowledge, reasoning, math, coding).
    pub source: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: Metadata,
}
