//! The [`Teacher`] trait (the four uses of the method plus plain generation) and
//! [`ChatTeacher`], its implementation over any [`ChatBackend`] through prompt templates
//! and parsers, with bounded re-asks on unparseable replies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rmd_core::{Conversation, Message};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::backend::{BackendInfo, BackendStats, BoxFuture, ChatBackend};
use crate::error::{ParseError, Task, TeacherError};
use crate::parse::{self, ExtractRoute, RefineParsePolicy, ScoreRange};
use crate::prompts::{PromptKind, PromptSet};
use crate::request::{ChatRequest, Completion, Sampling, TeacherLogprobs, Usage};

/// What a task cost and what the teacher said, attempt by attempt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallLog {
    /// Every raw completion received, in order (failed parses included).
    pub raw: Vec<String>,
    /// The parse error of each failed attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parse_errors: Vec<String>,
    pub calls: u32,
    pub cache_hits: u32,
    pub usage: Usage,
}

impl CallLog {
    fn record(&mut self, c: &Completion) {
        self.raw.push(c.text.clone());
        self.calls += 1;
        if c.cached {
            self.cache_hits += 1;
        } else {
            self.usage.add(c.usage);
        }
    }

    /// Appends another log (e.g. a second judging order).
    pub fn merge(&mut self, other: &CallLog) {
        self.raw.extend(other.raw.iter().cloned());
        self.parse_errors.extend(other.parse_errors.iter().cloned());
        self.calls += other.calls;
        self.cache_hits += other.cache_hits;
        self.usage.add(other.usage);
    }
}

/// Two scores for a pair, in presentation order (A shown first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgment {
    pub score_a: f64,
    pub score_b: f64,
    pub reasoning: Option<String>,
    pub log: CallLog,
}

/// A plain generation (the teacher's own answer, or anything sent via `generate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The answer with thinking blocks removed.
    pub text: String,
    /// The top-k log-probs of exactly the tokens of `text` (when requested through
    /// [`TeacherSettings::reference_top_logprobs`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<TeacherLogprobs>,
    pub completion: Completion,
    pub log: CallLog,
}

/// A contrastive refinement: diagnosis plus the minimally edited rejected answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refinement {
    pub reasoning: Option<String>,
    pub modified: String,
    pub route: ExtractRoute,
    /// The exchange the calibrated score continues: [refine prompt, teacher reply].
    pub conversation: Vec<Message>,
    pub log: CallLog,
}

/// The teacher's score for its own modified response, anchored on the rejected score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibratedScore {
    pub score: f64,
    pub log: CallLog,
}

/// Counters of the teacher layer plus those of its backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TeacherStats {
    pub backend: BackendStats,
    /// Replies that failed to parse, per task.
    pub parse_failures: BTreeMap<String, u64>,
    /// Follow-up requests sent after a parse failure.
    pub reasks: u64,
    /// Tasks abandoned because no reply parsed.
    pub unparseable: BTreeMap<String, u64>,
}

/// Identifies a teacher for provenance and resume fingerprints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherInfo {
    pub backend: BackendInfo,
    pub prompts_hash: String,
    pub prompt_origins: BTreeMap<String, String>,
    pub settings: TeacherSettings,
}

/// The method's four uses of a generative teacher, plus plain generation.
pub trait Teacher: Send + Sync {
    /// Scores `a` and `b` (shown in that order) on 1-10 in one reply.
    fn judge<'a>(
        &'a self,
        prompt: &'a Conversation,
        a: &'a str,
        b: &'a str,
        avoid_ties: bool,
    ) -> BoxFuture<'a, Result<Judgment, TeacherError>>;

    /// The teacher's own answer y_T to the prompt.
    fn reference<'a>(&'a self, prompt: &'a Conversation) -> BoxFuture<'a, Result<Generation, TeacherError>>;

    /// Diagnoses `rejected` against `preferred` and edits it minimally.
    fn refine<'a>(
        &'a self,
        prompt: &'a Conversation,
        preferred: &'a str,
        rejected: &'a str,
    ) -> BoxFuture<'a, Result<Refinement, TeacherError>>;

    /// Continues the refinement conversation: scores the modified response given the
    /// rejected answer's earlier score.
    fn calibrated_score<'a>(
        &'a self,
        refinement: &'a Refinement,
        rejected_score: f64,
    ) -> BoxFuture<'a, Result<CalibratedScore, TeacherError>>;

    /// Plain generation. With `top_logprobs`, the completion carries the top-k log-probs
    /// of every generated token, or the call fails with `Unsupported`.
    fn generate<'a>(
        &'a self,
        messages: &'a [Message],
        sampling: &'a Sampling,
        top_logprobs: Option<u32>,
    ) -> BoxFuture<'a, Result<Completion, TeacherError>>;

    fn info(&self) -> TeacherInfo;

    fn stats(&self) -> TeacherStats;
}

/// Sampling per task and parsing rules of a [`ChatTeacher`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeacherSettings {
    pub judge: Sampling,
    pub reference: Sampling,
    pub refine: Sampling,
    pub calibrate: Sampling,
    /// Follow-up requests after an unparseable reply before the task fails.
    pub max_reasks: u32,
    /// Range of judge scores.
    pub judge_range: ScoreRange,
    /// Range of calibrated scores.
    pub calibrate_range: ScoreRange,
    pub refine_parse: RefineParsePolicy,
    /// Record the top-k log-probs of every token of the teacher's own answer y_T (for the
    /// stored-distribution KL regularizer). `Some(0)` records the sampled tokens only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_top_logprobs: Option<u32>,
}

impl Default for TeacherSettings {
    fn default() -> Self {
        Self {
            judge: Sampling::greedy(1024),
            reference: Sampling::reference_default(),
            refine: Sampling::greedy(2048),
            calibrate: Sampling::greedy(64),
            max_reasks: 2,
            judge_range: ScoreRange::default(),
            calibrate_range: ScoreRange::default(),
            refine_parse: RefineParsePolicy::default(),
            reference_top_logprobs: None,
        }
    }
}

/// Teacher over a chat backend: renders prompts, sends messages, parses replies.
pub struct ChatTeacher<B> {
    backend: B,
    prompts: PromptSet,
    settings: TeacherSettings,
    parse_failures: [AtomicU64; 5],
    unparseable: [AtomicU64; 5],
    reasks: AtomicU64,
}

fn task_index(t: Task) -> usize {
    Task::ALL.iter().position(|x| *x == t).expect("task listed in ALL")
}

impl<B: ChatBackend> ChatTeacher<B> {
    pub fn new(backend: B, prompts: PromptSet, settings: TeacherSettings) -> Self {
        Self {
            backend,
            prompts,
            settings,
            parse_failures: Default::default(),
            unparseable: Default::default(),
            reasks: AtomicU64::new(0),
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn settings(&self) -> &TeacherSettings {
        &self.settings
    }

    pub fn into_arc(self) -> Arc<dyn Teacher>
    where
        B: 'static,
    {
        Arc::new(self)
    }

    fn render(&self, task: Task, kind: PromptKind, ctx: serde_json::Value) -> Result<Option<String>, TeacherError> {
        self.prompts
            .render(kind, ctx)
            .map_err(|message| TeacherError::Template { task, template: kind.name().into(), message })
    }

    fn render_required(&self, task: Task, kind: PromptKind, ctx: serde_json::Value) -> Result<String, TeacherError> {
        self.render(task, kind, ctx)?.ok_or_else(|| TeacherError::Template {
            task,
            template: kind.name().into(),
            message: "template is not set".into(),
        })
    }

    /// Sends `messages`, parses the reply, and on a parse failure appends the reply and a
    /// re-ask turn and tries again, at most `max_reasks` times. Returns the parsed value,
    /// the conversation including the accepted reply, and the log.
    async fn ask<T>(
        &self,
        task: Task,
        mut messages: Vec<Message>,
        sampling: &Sampling,
        top_logprobs: Option<u32>,
        parse: impl Fn(&Completion) -> Result<T, ParseError>,
    ) -> Result<(T, Vec<Message>, Completion, CallLog), TeacherError> {
        let mut log = CallLog::default();
        let mut attempt = 0u32;
        loop {
            let request = ChatRequest { messages: messages.clone(), sampling: sampling.clone(), top_logprobs };
            let completion = match self.backend.complete(&request).await {
                Ok(c) => c,
                Err(source) => return Err(TeacherError::Backend { task, source, log: Box::new(log) }),
            };
            log.record(&completion);
            match parse(&completion) {
                Ok(value) => {
                    messages.push(Message::assistant(completion.text.clone()));
                    return Ok((value, messages, completion, log));
                }
                Err(err) => {
                    self.parse_failures[task_index(task)].fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%task, attempt, error = %err, "unparseable teacher reply");
                    log.parse_errors.push(err.to_string());
                    if attempt >= self.settings.max_reasks {
                        self.unparseable[task_index(task)].fetch_add(1, Ordering::Relaxed);
                        return Err(TeacherError::Unparseable { task, attempts: attempt + 1, last: err, log: Box::new(log) });
                    }
                    let reask = self.render_required(task, PromptKind::Reask, json!({ "error": err.to_string() }))?;
                    messages.push(Message::assistant(completion.text.clone()));
                    messages.push(Message::user(reask));
                    self.reasks.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                }
            }
        }
    }
}

/// The prompt as one block of text for the context slot of a template.
fn context_text(prompt: &Conversation) -> String {
    prompt.to_plain_text()
}

/// Formats a score the way the calibration turn states it (`3.0`, `6.5`).
pub fn format_score(score: f64) -> String {
    format!("{score:.1}")
}

impl<B: ChatBackend> Teacher for ChatTeacher<B> {
    fn judge<'a>(
        &'a self,
        prompt: &'a Conversation,
        a: &'a str,
        b: &'a str,
        avoid_ties: bool,
    ) -> BoxFuture<'a, Result<Judgment, TeacherError>> {
        Box::pin(async move {
            let text = self.render_required(
                Task::Judge,
                PromptKind::Judge,
                json!({ "context": context_text(prompt), "response_a": a, "response_b": b, "avoid_ties": avoid_ties }),
            )?;
            let range = self.settings.judge_range;
            let ((score_a, score_b), _, completion, log) = self
                .ask(Task::Judge, vec![Message::user(text)], &self.settings.judge, None, |c| {
                    parse::parse_pair_scores(&c.text, range)
                })
                .await?;
            let reasoning = extract_reasoning(&completion.text);
            Ok(Judgment { score_a, score_b, reasoning, log })
        })
    }

    fn reference<'a>(&'a self, prompt: &'a Conversation) -> BoxFuture<'a, Result<Generation, TeacherError>> {
        Box::pin(async move {
            let messages = match self.render(Task::Reference, PromptKind::Reference, json!({ "context": context_text(prompt) }))? {
                Some(text) => vec![Message::user(text)],
                None => prompt.messages().to_vec(),
            };
            let top_logprobs = self.settings.reference_top_logprobs;
            if top_logprobs.is_some() && !self.backend.supports_logprobs() {
                return Err(TeacherError::Unsupported {
                    task: Task::Reference,
                    message: format!(
                        "reference_top_logprobs is set but backend {} does not return log-probs",
                        self.backend.info().kind
                    ),
                });
            }
            let (text, _, completion, log) = self
                .ask(Task::Reference, messages, &self.settings.reference, top_logprobs, |c| {
                    if c.truncated() {
                        return Err(ParseError::Truncated { what: "the answer".into() });
                    }
                    let t = parse::strip_thinking(&c.text);
                    if t.is_empty() {
                        Err(ParseError::Empty { what: "answer".into() })
                    } else {
                        Ok(t)
                    }
                })
                .await?;
            // Log-probs that do not fit the kept answer end the task without a re-ask: the
            // answer itself was fine, and asking the model about token alignment is pointless.
            let logprobs = match top_logprobs {
                None => None,
                Some(_) => {
                    let fitted = match &completion.logprobs {
                        None => Err("log-probs were requested but the reply has none".to_string()),
                        Some(lp) => crate::logprobs::align_logprobs(lp, &completion.text, &text),
                    };
                    match fitted {
                        Ok(lp) => Some(lp),
                        Err(message) => {
                            self.unparseable[task_index(Task::Reference)].fetch_add(1, Ordering::Relaxed);
                            return Err(TeacherError::Unparseable {
                                task: Task::Reference,
                                attempts: log.calls,
                                last: ParseError::Logprobs { message },
                                log: Box::new(log),
                            });
                        }
                    }
                }
            };
            Ok(Generation { text, logprobs, completion, log })
        })
    }

    fn refine<'a>(
        &'a self,
        prompt: &'a Conversation,
        preferred: &'a str,
        rejected: &'a str,
    ) -> BoxFuture<'a, Result<Refinement, TeacherError>> {
        Box::pin(async move {
            let text = self.render_required(
                Task::Refine,
                PromptKind::Refine,
                json!({ "context": context_text(prompt), "preferred": preferred, "rejected": rejected }),
            )?;
            let policy = self.settings.refine_parse;
            let (parsed, messages, _, log) = self
                .ask(Task::Refine, vec![Message::user(text)], &self.settings.refine, None, |c| {
                    parse::parse_refinement(&c.text, c.truncated(), policy)
                })
                .await?;
            // Calibration continues from the accepted exchange only, so a re-asked
            // refinement does not drag its failed attempts into the scoring turn.
            let n = messages.len();
            let conversation = vec![messages[0].clone(), messages[n - 1].clone()];
            Ok(Refinement {
                reasoning: parsed.reasoning,
                modified: parsed.modified,
                route: parsed.route,
                conversation,
                log,
            })
        })
    }

    fn calibrated_score<'a>(
        &'a self,
        refinement: &'a Refinement,
        rejected_score: f64,
    ) -> BoxFuture<'a, Result<CalibratedScore, TeacherError>> {
        Box::pin(async move {
            let turn = self.render_required(
                Task::Calibrate,
                PromptKind::Calibrate,
                json!({ "rejected_score": format_score(rejected_score) }),
            )?;
            let mut messages = refinement.conversation.clone();
            messages.push(Message::user(turn));
            let range = self.settings.calibrate_range;
            let (score, _, _, log) = self
                .ask(Task::Calibrate, messages, &self.settings.calibrate, None, |c| parse::parse_score(&c.text, range))
                .await?;
            Ok(CalibratedScore { score, log })
        })
    }

    fn generate<'a>(
        &'a self,
        messages: &'a [Message],
        sampling: &'a Sampling,
        top_logprobs: Option<u32>,
    ) -> BoxFuture<'a, Result<Completion, TeacherError>> {
        Box::pin(async move {
            if top_logprobs.is_some() && !self.backend.supports_logprobs() {
                return Err(TeacherError::Unsupported {
                    task: Task::Generate,
                    message: format!("backend {} does not return log-probs", self.backend.info().kind),
                });
            }
            let request = ChatRequest { messages: messages.to_vec(), sampling: sampling.clone(), top_logprobs };
            let completion = self.backend.complete(&request).await.map_err(|source| TeacherError::Backend {
                task: Task::Generate,
                source,
                log: Box::default(),
            })?;
            if top_logprobs.is_some() && completion.logprobs.is_none() {
                let mut log = CallLog::default();
                log.record(&completion);
                return Err(TeacherError::Backend {
                    task: Task::Generate,
                    source: crate::BackendError::Malformed {
                        url: self.backend.info().kind,
                        message: "log-probs were requested but the reply has none".into(),
                    },
                    log: Box::new(log),
                });
            }
            Ok(completion)
        })
    }

    fn info(&self) -> TeacherInfo {
        TeacherInfo {
            backend: self.backend.info(),
            prompts_hash: self.prompts.hash(),
            prompt_origins: self.prompts.origins(),
            settings: self.settings.clone(),
        }
    }

    fn stats(&self) -> TeacherStats {
        let collect = |arr: &[AtomicU64; 5]| {
            Task::ALL
                .iter()
                .zip(arr.iter())
                .filter_map(|(t, c)| {
                    let v = c.load(Ordering::Relaxed);
                    (v > 0).then(|| (t.as_str().to_string(), v))
                })
                .collect()
        };
        TeacherStats {
            backend: self.backend.stats(),
            parse_failures: collect(&self.parse_failures),
            reasks: self.reasks.load(Ordering::Relaxed),
            unparseable: collect(&self.unparseable),
        }
    }
}

/// The judge's reasoning block, when it wrote one.
fn extract_reasoning(text: &str) -> Option<String> {
    let body = parse::strip_thinking(text);
    let (open, close) = crate::prompts::markers::REASONING;
    let s = body.find(open)? + open.len();
    let e = body[s..].find(close)? + s;
    Some(body[s..e].trim().to_string())
}
