//! rmd-train: the reward-model training loop.
//!
//! One optimizer step = `accumulation_steps` micro-batches; each micro-batch is one forward over
//! the reward rows (chosen and rejected of every pair) and the LM rows (prompt + teacher
//! response), then `w_reward * objective + w_sft * SFT + w_kl * KL`. AdamW with PyTorch's
//! defaults set explicitly, linear warmup + cosine decay, global-norm clipping, seeded
//! shuffling, periodic evaluation, JSONL metrics, checkpoints with exact resume and a hard
//! stop on a non-finite loss.
//!
//! Several devices (`TrainConfig::devices`, [`Trainer::with_devices`]): data parallelism with
//! burn's collective, every micro-batch split across the devices ([`parallel`]).

pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod metrics;
pub mod parallel;
pub mod precision;
pub mod schedule;
pub mod teacher_tokens;
pub mod trainer;

pub use config::{KlSource, LossWeights, ObjectiveConfig, OptimizerConfig, TrainConfig};
pub use data::{EncodeOptions, EncodedPair, EncodedSet};
pub use error::TrainError;
pub use precision::Precision;
pub use evaluate::{evaluate_pairs, EvalMetrics};
pub use trainer::{StepControl, StepRecord, Trainer};
