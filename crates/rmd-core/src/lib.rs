//! rmd-core: the domain types shared by every rm-distiller crate and the dataset IO
//! that turns what users have on disk (Parquet, JSONL, JSON in HF/TRL/HH/benchmark
//! layouts) into those types and back.

pub mod io;
pub mod logprobs;
pub mod message;
pub mod pair;

pub use io::{DataError, Format, Layout, ColumnMap, ReadOptions, ErrorMode, SkipReport};
pub use logprobs::{GeneratedToken, LogprobsError, TeacherLogprobs, TokenLogprob};
pub use message::{Conversation, Message, Role};
pub use pair::{BestOfN, JudgeLabel, JudgePair, Metadata, PreferencePair, StyleMatrix, STYLE_VARIANTS};
