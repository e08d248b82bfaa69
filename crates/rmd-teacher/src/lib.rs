//! rmd-teacher: the generative teacher of RM-Distiller.
//!
//! - [`Teacher`]: the method's four uses (pair judging, reference answers, contrastive
//!   refinement, self-calibrated scoring) plus plain generation with optional top-k
//!   log-probs.
//! - [`ChatTeacher`]: a `Teacher` over any [`ChatBackend`], talking in chat messages built
//!   from replaceable templates ([`PromptSet`]) and read back by typed parsers
//!   ([`parse`]), with bounded re-asks on unparseable replies.
//! - Backends: [`OpenAiBackend`] (OpenAI-compatible HTTP with concurrency cap, rate limit,
//!   retries, load balancing), [`CachedBackend`] (on-disk response cache) and
//!   [`EmbeddedBackend`] (a no-network teacher over the synthetic [`world`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rmd_teacher::{ChatTeacher, EmbeddedBackend, EmbeddedConfig, PromptSet, Teacher, TeacherSettings};
//! let teacher = ChatTeacher::new(EmbeddedBackend::new(EmbeddedConfig::default()), PromptSet::default(), TeacherSettings::default());
//! let prompt = rmd_core::Conversation::from_user("What is 7 plus 5?");
//! let j = teacher.judge(&prompt, "It is 12.", "Sure! It is 13.", false).await?;
//! assert!(j.score_a > j.score_b);
//! # Ok(()) }
//! ```

pub mod backend;
pub mod cache;
pub mod canonical;
pub mod embedded;
pub mod error;
pub mod logprobs;
#[cfg(feature = "mock-server")]
pub mod mock_server;
pub mod openai;
pub mod parse;
pub mod prompts;
pub mod request;
pub mod teacher;
pub mod world;

pub use backend::{BackendInfo, BackendStats, BoxFuture, ChatBackend};
pub use cache::CachedBackend;
pub use embedded::{EmbeddedBackend, EmbeddedConfig};
pub use error::{BackendError, ParseError, Task, TeacherError};
pub use openai::{OpenAiBackend, OpenAiConfig};
pub use parse::{ExtractRoute, RefineParsePolicy, ScoreRange};
pub use prompts::{PromptError, PromptKind, PromptSet};
pub use request::{ChatRequest, Completion, GeneratedToken, Sampling, TeacherLogprobs, TokenLogprob, Usage};
pub use teacher::{
    format_score, CalibratedScore, CallLog, ChatTeacher, Generation, Judgment, Refinement, Teacher, TeacherInfo,
    TeacherSettings, TeacherStats,
};
