//! Layouts: which columns a dataset has and what they mean, and how to recognise one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::columns::{ColumnMap, Field};
use super::error::DataError;

/// The record type a layout holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// [`PreferencePair`](crate::PreferencePair)
    Pair,
    /// [`BestOfN`](crate::BestOfN)
    BestOfN,
    /// [`StyleMatrix`](crate::StyleMatrix)
    StyleMatrix,
    /// [`JudgePair`](crate::JudgePair)
    JudgePair,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::Pair => "preference-pair",
            RecordKind::BestOfN => "best-of-n",
            RecordKind::StyleMatrix => "style-matrix",
            RecordKind::JudgePair => "judge-pair",
        })
    }
}

/// A dataset layout. See docs/layouts.md for the columns of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `prompt`, `chosen`, `rejected` strings; optional `id`, `chosen_score`, `rejected_score`,
    /// `margin`, `teacher_response`, `teacher_logprobs`, `metadata`.
    Explicit,
    /// TRL conversational preference data: `chosen`/`rejected` message lists, with an
    /// explicit `prompt` message list or an implicit prompt (their shared leading messages).
    TrlConversational,
    /// Anthropic HH-RLHF: `chosen`/`rejected` transcripts `"\n\nHuman: ...\n\nAssistant: ..."`.
    AnthropicHh,
    /// The RM-Distiller reference output: `prompt, chosen, rejected, chosen_score,
    /// rejected_score, teacher_response`, scores and teacher response required; optional
    /// `teacher_logprobs` (ours) and `metadata`.
    RmDistiller,
    /// RewardBench v1: `prompt, chosen, rejected, chosen_model, rejected_model, subset, id`.
    RewardBench,
    /// RewardBench 2: `id, prompt, chosen[], rejected[], num_correct, subset` (best-of-N).
    RewardBench2,
    /// RM-Bench: `id, prompt, chosen[3], rejected[3], domain` (style matrix).
    RmBench,
    /// JudgeBench: `pair_id, original_id, source, question, response_model, response_A,
    /// response_B, label`.
    JudgeBench,
}

/// The Arrow/JSON type of a layout column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A string (Arrow Utf8).
    Text,
    /// A string or an integer (ids); written as Utf8.
    Id,
    /// A finite number (Arrow Float64).
    Float,
    /// A non-negative integer (Arrow Int64).
    Int,
    /// A list of `{role, content}` objects (Arrow `List<Struct<role: Utf8, content: Utf8>>`).
    Messages,
    /// A list of strings (Arrow `List<Utf8>`).
    TextList,
    /// A JSON object; a JSON-encoded string in Parquet (Arrow Utf8).
    Json,
    /// Per-token teacher log-probs ([`TeacherLogprobs`](crate::TeacherLogprobs)): a list of
    /// `{id?, text?, bytes?, logprob, top: [{id?, text?, bytes?, logprob}]}` objects (Arrow
    /// `List<Struct<id: UInt32, text: Utf8, bytes: List<UInt8>, logprob: Float64, top: List<Struct<..>>>>`).
    TokenLogprobs,
}

/// One column of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    pub field: Field,
    pub ty: ColumnType,
    /// Whether every row must have a (non-null) value. Optional columns may be absent or null.
    pub required: bool,
}

const fn req(field: Field, ty: ColumnType) -> ColumnSpec {
    ColumnSpec {
        field,
        ty,
        required: true,
    }
}
const fn opt(field: Field, ty: ColumnType) -> ColumnSpec {
    ColumnSpec {
        field,
        ty,
        required: false,
    }
}

use ColumnType as T;

const EXPLICIT: &[ColumnSpec] = &[
    opt(Field::Id, T::Id),
    req(Field::Prompt, T::Text),
    req(Field::Chosen, T::Text),
    req(Field::Rejected, T::Text),
    opt(Field::ChosenScore, T::Float),
    opt(Field::RejectedScore, T::Float),
    opt(Field::Margin, T::Float),
    opt(Field::TeacherResponse, T::Text),
    opt(Field::TeacherLogprobs, T::TokenLogprobs),
    opt(Field::Metadata, T::Json),
];
const TRL: &[ColumnSpec] = &[
    opt(Field::Id, T::Id),
    opt(Field::Prompt, T::Messages),
    req(Field::Chosen, T::Messages),
    req(Field::Rejected, T::Messages),
    opt(Field::ChosenScore, T::Float),
    opt(Field::RejectedScore, T::Float),
    opt(Field::Margin, T::Float),
    opt(Field::TeacherResponse, T::Text),
    opt(Field::TeacherLogprobs, T::TokenLogprobs),
    opt(Field::Metadata, T::Json),
];
const HH: &[ColumnSpec] = &[
    opt(Field::Id, T::Id),
    req(Field::Chosen, T::Text),
    req(Field::Rejected, T::Text),
    opt(Field::ChosenScore, T::Float),
    opt(Field::RejectedScore, T::Float),
    opt(Field::Margin, T::Float),
    opt(Field::TeacherResponse, T::Text),
    opt(Field::TeacherLogprobs, T::TokenLogprobs),
    opt(Field::Metadata, T::Json),
];
const RM_DISTILLER: &[ColumnSpec] = &[
    opt(Field::Id, T::Id),
    req(Field::Prompt, T::Text),
    req(Field::Chosen, T::Text),
    req(Field::Rejected, T::Text),
    req(Field::ChosenScore, T::Float),
    req(Field::RejectedScore, T::Float),
    req(Field::TeacherResponse, T::Text),
    opt(Field::TeacherLogprobs, T::TokenLogprobs),
    opt(Field::Metadata, T::Json),
];
const REWARD_BENCH: &[ColumnSpec] = &[
    opt(Field::Id, T::Id),
    req(Field::Prompt, T::Text),
    req(Field::Chosen, T::Text),
    req(Field::Rejected, T::Text),
    opt(Field::ChosenModel, T::Text),
    opt(Field::RejectedModel, T::Text),
    req(Field::Subset, T::Text),
    opt(Field::ChosenScore, T::Float),
    opt(Field::RejectedScore, T::Float),
    opt(Field::Margin, T::Float),
    opt(Field::TeacherResponse, T::Text),
    opt(Field::Metadata, T::Json),
];
const REWARD_BENCH2: &[ColumnSpec] = &[
    opt(Field::Id, T::Id),
    req(Field::Prompt, T::Text),
    req(Field::Chosen, T::TextList),
    req(Field::Rejected, T::TextList),
    req(Field::NumCorrect, T::Int),
    req(Field::Subset, T::Text),
    opt(Field::Metadata, T::Json),
];
const RM_BENCH: &[ColumnSpec] = &[
    opt(Field::Id, T::Id),
    req(Field::Prompt, T::Text),
    req(Field::Chosen, T::TextList),
    req(Field::Rejected, T::TextList),
    req(Field::Domain, T::Text),
    opt(Field::Metadata, T::Json),
];
const JUDGE_BENCH: &[ColumnSpec] = &[
    opt(Field::Id, T::Id),
    opt(Field::OriginalId, T::Text),
    req(Field::Source, T::Text),
    req(Field::Prompt, T::Text),
    opt(Field::ResponseModel, T::Text),
    req(Field::ResponseA, T::Text),
    req(Field::ResponseB, T::Text),
    req(Field::Label, T::Text),
    opt(Field::Metadata, T::Json),
];

impl Layout {
    pub const ALL: [Layout; 8] = [
        Layout::Explicit,
        Layout::TrlConversational,
        Layout::AnthropicHh,
        Layout::RmDistiller,
        Layout::RewardBench,
        Layout::RewardBench2,
        Layout::RmBench,
        Layout::JudgeBench,
    ];

    /// The layout's name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Explicit => "explicit",
            Layout::TrlConversational => "trl-conversational",
            Layout::AnthropicHh => "anthropic-hh",
            Layout::RmDistiller => "rm-distiller",
            Layout::RewardBench => "reward-bench",
            Layout::RewardBench2 => "reward-bench2",
            Layout::RmBench => "rm-bench",
            Layout::JudgeBench => "judge-bench",
        }
    }

    pub fn record_kind(self) -> RecordKind {
        match self {
            Layout::Explicit
            | Layout::TrlConversational
            | Layout::AnthropicHh
            | Layout::RmDistiller
            | Layout::RewardBench => RecordKind::Pair,
            Layout::RewardBench2 => RecordKind::BestOfN,
            Layout::RmBench => RecordKind::StyleMatrix,
            Layout::JudgeBench => RecordKind::JudgePair,
        }
    }

    /// The layout's columns, in the order writers emit them. Writers emit every column
    /// (null where a record has no value), in every format, so a written file always has
    /// the same column set and detects as the same layout.
    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            Layout::Explicit => EXPLICIT,
            Layout::TrlConversational => TRL,
            Layout::AnthropicHh => HH,
            Layout::RmDistiller => RM_DISTILLER,
            Layout::RewardBench => REWARD_BENCH,
            Layout::RewardBench2 => REWARD_BENCH2,
            Layout::RmBench => RM_BENCH,
            Layout::JudgeBench => JUDGE_BENCH,
        }
    }

    /// The column spec of `field`, if this layout has that field.
    pub fn spec(self, field: Field) -> Option<&'static ColumnSpec> {
        self.columns().iter().find(|c| c.field == field)
    }

    /// The column name a field has when no [`ColumnMap`] override applies.
    pub fn default_column(self, field: Field) -> &'static str {
        match (self, field) {
            (Layout::JudgeBench, Field::Id) => "pair_id",
            (Layout::JudgeBench, Field::Prompt) => "question",
            (Layout::JudgeBench, Field::ResponseA) => "response_A",
            (Layout::JudgeBench, Field::ResponseB) => "response_B",
            _ => field.key(),
        }
    }

    /// A more general layout this one specialises: when both match a file, this one wins.
    fn refines(self) -> Option<Layout> {
        match self {
            Layout::RmDistiller | Layout::RewardBench => Some(Layout::Explicit),
            _ => None,
        }
    }

    /// Columns whose presence rules this layout out (so that files written in a related
    /// layout are never mistaken for this one).
    fn excluded(self) -> &'static [Field] {
        match self {
            // Explicit/RewardBench files written by us carry a `margin` column; the reference
            // RM-Distiller output never does.
            Layout::RmDistiller => &[Field::Margin, Field::Subset],
            Layout::AnthropicHh => &[Field::Prompt],
            _ => &[],
        }
    }

    /// Whether the columns fit this layout: every required column present with a compatible
    /// type, and no excluded column present.
    pub fn matches(self, columns: &[ColumnInfo], map: &ColumnMap) -> bool {
        let find = |field: Field| {
            let name = map.column(self, field);
            columns.iter().find(|c| c.name == name)
        };
        let required_ok = self
            .columns()
            .iter()
            .filter(|s| s.required)
            .all(|s| find(s.field).is_some_and(|c| c.kind.compatible_with(s.ty)));
        required_ok && self.excluded().iter().all(|f| find(*f).is_none())
    }

    /// Detects the layout from a file's columns (the Parquet schema, or the first row of a
    /// JSON file). See docs/layouts.md for the rules.
    pub fn detect(columns: &[ColumnInfo], map: &ColumnMap) -> Result<Layout, DetectError> {
        let matching: Vec<Layout> = Layout::ALL
            .into_iter()
            .filter(|l| l.matches(columns, map))
            .collect();
        // Keep the most specific layouts: drop any layout another match refines.
        let candidates: Vec<Layout> = matching
            .iter()
            .copied()
            .filter(|l| !matching.iter().any(|m| m.refines() == Some(*l)))
            .collect();
        match candidates.as_slice() {
            [one] => Ok(*one),
            [] => Err(DetectError::NoMatch),
            _ => Err(DetectError::Ambiguous(candidates)),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        let layout = match norm.as_str() {
            "explicit" => Layout::Explicit,
            "trl-conversational" | "trl" | "conversational" => Layout::TrlConversational,
            "anthropic-hh" | "hh" | "hh-rlhf" => Layout::AnthropicHh,
            "rm-distiller" | "rmdistiller" => Layout::RmDistiller,
            "reward-bench" | "rewardbench" | "reward-bench1" | "rewardbench1" => {
                Layout::RewardBench
            }
            "reward-bench2" | "rewardbench2" | "reward-bench-2" => Layout::RewardBench2,
            "rm-bench" | "rmbench" => Layout::RmBench,
            "judge-bench" | "judgebench" => Layout::JudgeBench,
            _ => {
                return Err(DataError::InvalidOption(format!(
                    "unknown layout {s:?}; known layouts: {}",
                    Layout::ALL.map(|l| l.name()).join(", ")
                )))
            }
        };
        Ok(layout)
    }
}

/// Why [`Layout::detect`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectError {
    NoMatch,
    Ambiguous(Vec<Layout>),
}

/// The coarse type of a column, as far as detection needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    Text,
    Number,
    Bool,
    Object,
    TextList,
    /// A list of objects/structs (message lists).
    ObjectList,
    /// A list whose element type is unknown (an empty list in a JSON row).
    EmptyList,
    OtherList,
    /// Null in the probed row: the type is unknown.
    Null,
    Other,
}

impl ColumnKind {
    fn compatible_with(self, ty: ColumnType) -> bool {
        use ColumnKind as K;
        match self {
            K::Null => true,
            K::Text => matches!(ty, T::Text | T::Id | T::Json | T::TokenLogprobs),
            K::Number => matches!(ty, T::Float | T::Int | T::Id),
            K::TextList => ty == T::TextList,
            K::ObjectList => matches!(ty, T::Messages | T::TokenLogprobs),
            K::EmptyList => matches!(ty, T::TextList | T::Messages | T::TokenLogprobs),
            K::Object => ty == T::Json,
            K::Bool | K::OtherList | K::Other => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Text => "string",
            ColumnKind::Number => "number",
            ColumnKind::Bool => "bool",
            ColumnKind::Object => "object",
            ColumnKind::TextList => "list<string>",
            ColumnKind::ObjectList => "list<object>",
            ColumnKind::EmptyList => "list<?>",
            ColumnKind::OtherList => "list",
            ColumnKind::Null => "null",
            ColumnKind::Other => "other",
        }
    }

    /// The kind of a JSON value.
    pub fn of_json(v: &serde_json::Value) -> ColumnKind {
        use serde_json::Value;
        match v {
            Value::Null => ColumnKind::Null,
            Value::Bool(_) => ColumnKind::Bool,
            Value::Number(_) => ColumnKind::Number,
            Value::String(_) => ColumnKind::Text,
            Value::Object(_) => ColumnKind::Object,
            Value::Array(items) => match items.first() {
                None => ColumnKind::EmptyList,
                Some(Value::String(_)) => ColumnKind::TextList,
                Some(Value::Object(_)) => ColumnKind::ObjectList,
                Some(_) => ColumnKind::OtherList,
            },
        }
    }
}

/// A column's name and coarse type, the input of layout detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub kind: ColumnKind,
}

impl ColumnInfo {
    pub fn new(name: impl Into<String>, kind: ColumnKind) -> Self {
        Self {
            name: name.into(),
            kind,
        }
    }
}

impl fmt::Display for ColumnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.kind.name())
    }
}
