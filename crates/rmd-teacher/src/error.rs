//! Typed failures: transport/backend errors, parse errors, and what the teacher reports.

use serde::Serialize;
use thiserror::Error;

/// A failure to obtain a completion from a backend.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum BackendError {
    /// A status the server will keep answering (400 context too long, 401, 404 model...).
    #[error("HTTP {status} from {url}: {body}")]
    Status { status: u16, url: String, body: String },
    #[error("request to {url} timed out after {timeout_s:.1}s")]
    Timeout { url: String, timeout_s: f64 },
    #[error("transport error talking to {url}: {message}")]
    Transport { url: String, message: String },
    #[error("malformed response from {url}: {message}")]
    Malformed { url: String, message: String },
    /// A transient failure (429, 5xx, timeout, broken body) that persisted through every retry.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { attempts: u32, last: Box<BackendError> },
    #[error("backend configuration: {0}")]
    Config(String),
    #[error("response cache {path}: {message}")]
    Cache { path: String, message: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl BackendError {
    /// Worth retrying later: the same request may succeed once the server recovers.
    /// A pipeline must not record a row dropped for a transient error as final.
    pub fn is_transient(&self) -> bool {
        match self {
            BackendError::Timeout { .. }
            | BackendError::Transport { .. }
            | BackendError::Malformed { .. }
            | BackendError::RetriesExhausted { .. }
            | BackendError::Cache { .. } => true,
            BackendError::Status { status, .. } => is_retryable_status(*status),
            BackendError::Config(_) | BackendError::Unsupported(_) => false,
        }
    }

    /// A short stable code for reports (`timeout`, `http_400`, ...).
    pub fn code(&self) -> String {
        match self {
            BackendError::Status { status, .. } => format!("http_{status}"),
            BackendError::Timeout { .. } => "timeout".into(),
            BackendError::Transport { .. } => "transport".into(),
            BackendError::Malformed { .. } => "malformed".into(),
            BackendError::RetriesExhausted { last, .. } => format!("retries_exhausted:{}", last.code()),
            BackendError::Config(_) => "config".into(),
            BackendError::Cache { .. } => "cache".into(),
            BackendError::Unsupported(_) => "unsupported".into(),
        }
    }
}

/// Statuses that signal an overloaded or restarting server rather than a bad request.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 425 | 429) || (500..=599).contains(&status)
}

/// Why a completion could not be turned into the value a task needs.
#[derive(Debug, Clone, Error, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ParseError {
    #[error("no line starting with `Scores:` followed by two numbers")]
    MissingScores,
    #[error("found {found} number(s) after `Scores:`, expected 2")]
    WrongScoreCount { found: usize },
    #[error("score {value} is outside [{min}, {max}]")]
    OutOfRange { value: f64, min: f64, max: f64 },
    #[error("the reply contains no number")]
    NoNumber,
    #[error("no {block} block")]
    MissingBlock { block: String },
    #[error("the {what} is empty")]
    Empty { what: String },
    #[error("the reply was cut off at the token limit before {what} was complete")]
    Truncated { what: String },
    /// Token log-probs were requested but do not fit the kept answer.
    #[error("the token log-probs do not match the answer: {message}")]
    Logprobs { message: String },
}

/// Which of the teacher's uses a call served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Judge,
    Reference,
    Refine,
    Calibrate,
    Generate,
}

impl Task {
    pub const ALL: [Task; 5] = [Task::Judge, Task::Reference, Task::Refine, Task::Calibrate, Task::Generate];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::Judge => "judge",
            Task::Reference => "reference",
            Task::Refine => "refine",
            Task::Calibrate => "calibrate",
            Task::Generate => "generate",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A teacher task that failed. Every variant carries the raw completions received so
/// far, so nothing the teacher said (and was paid for) is lost.
#[derive(Debug, Clone, Error)]
pub enum TeacherError {
    #[error("{task}: {source}")]
    Backend { task: Task, source: BackendError, log: Box<crate::CallLog> },
    #[error("{task}: reply unparseable after {attempts} attempt(s): {last}")]
    Unparseable { task: Task, attempts: u32, last: ParseError, log: Box<crate::CallLog> },
    #[error("{task}: prompt template `{template}`: {message}")]
    Template { task: Task, template: String, message: String },
    #[error("{task}: {message}")]
    Unsupported { task: Task, message: String },
}

impl TeacherError {
    pub fn task(&self) -> Task {
        match self {
            TeacherError::Backend { task, .. }
            | TeacherError::Unparseable { task, .. }
            | TeacherError::Template { task, .. }
            | TeacherError::Unsupported { task, .. } => *task,
        }
    }

    /// The raw completions and usage gathered before the failure, if any.
    pub fn log(&self) -> Option<&crate::CallLog> {
        match self {
            TeacherError::Backend { log, .. } | TeacherError::Unparseable { log, .. } => Some(log),
            _ => None,
        }
    }

    /// See [`BackendError::is_transient`]; parse and template failures are not transient.
    pub fn is_transient(&self) -> bool {
        matches!(self, TeacherError::Backend { source, .. } if source.is_transient())
    }
}
