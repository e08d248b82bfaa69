//! Why training stopped.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("model: {0}")]
    Model(#[from] rmd_model::ModelError),
    #[error("loss: {0}")]
    Loss(#[from] rmd_loss::LossError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("pair `{id}` (row {row}): {message}")]
    Data { id: String, row: usize, message: String },
    #[error("invalid training config: {0}")]
    Config(String),
    #[error(
        "non-finite loss at step {step} (micro-batch {micro}): {component} = {value}; the update was not applied and the last good checkpoint is {last_checkpoint:?}"
    )]
    NonFinite { step: usize, micro: usize, component: String, value: f64, last_checkpoint: Option<PathBuf> },
    #[error("evaluation: {0}")]
    Eval(String),
    /// Multi-device training (burn-collective registration or a collective operation) failed.
    #[error("data-parallel training: {0}")]
    Parallel(String),
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}
