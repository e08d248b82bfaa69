//! A teacher without a network: a chat backend that reads our own prompt formats,
//! works out the task from their tags, answers from the synthetic world's ground truth,
//! and replies in text, so its answers go through the same parsers as an HTTP model's.
//!
//! It judges with Gaussian noise, a position bias toward the first response and an
//! optional taste for decoration; refines by a genuine minimal edit (the wrong number
//! replaced by the right one); scores its edit anchored on the stated rejected score;
//! and answers questions with the plain reference form. `format_error_rate` makes a reply
//! ignore the output format, to exercise re-asks. Randomness is a pure function of the
//! seed and the request, so identical requests get identical replies (cache-consistent).

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmd_core::{Message, Role};
use serde::{Deserialize, Serialize};

use crate::backend::{bump, BackendInfo, BackendStats, BoxFuture, ChatBackend, Counters};
use crate::canonical::{canonical_json, sha256_hex};
use crate::error::BackendError;
use crate::parse::{self, RefineParsePolicy};
use crate::prompts::markers;
use crate::request::{ChatRequest, Completion, GeneratedToken, TeacherLogprobs, TokenLogprob, Usage};
use crate::world::{self, split_words, Question};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    pub seed: u64,
    /// Standard deviation of the noise added to each judge score.
    pub judge_noise: f64,
    /// Points added to the score of the response shown first.
    pub position_bias: f64,
    /// Points added per decoration feature (0 = a judge blind to style).
    pub decoration_bias: f64,
    /// Standard deviation of the noise on calibrated scores.
    pub calibration_noise: f64,
    /// Probability that a reply ignores the required output format.
    pub format_error_rate: f64,
    /// Probability that a refinement writes another wrong number instead of the fix.
    pub refine_failure_rate: f64,
    /// Simulated latency per request, in milliseconds.
    pub latency_ms: u64,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            judge_noise: 0.6,
            position_bias: 0.5,
            decoration_bias: 0.0,
            calibration_noise: 0.3,
            format_error_rate: 0.0,
            refine_failure_rate: 0.0,
            latency_ms: 0,
        }
    }
}

/// The embedded world teacher as a [`ChatBackend`].
#[derive(Debug, Default)]
pub struct EmbeddedBackend {
    cfg: EmbeddedConfig,
    counters: Counters,
}

/// What the conversation asks for, recognised from the default prompts' tags.
enum Ask<'a> {
    Judge { prompt: &'a str },
    Refine { prompt: &'a str },
    Calibrate { refine_prompt: &'a str, refine_reply: &'a str, turn: &'a str },
    Answer { text: &'a str },
}

fn classify(messages: &[Message]) -> Option<Ask<'_>> {
    let users: Vec<usize> = (0..messages.len()).filter(|&i| messages[i].role == Role::User).collect();
    for &i in users.iter().rev() {
        let text = messages[i].content.as_str();
        if text.contains(markers::NON_PREFERRED.0) {
            return Some(Ask::Refine { prompt: text });
        }
        if text.contains(markers::RESPONSE_A.0) {
            return Some(Ask::Judge { prompt: text });
        }
        if text.contains(markers::REASK_PHRASE) {
            continue;
        }
        if text.contains(markers::CALIBRATE_PHRASE) {
            let reply = messages[..i].iter().rev().find(|m| m.role == Role::Assistant)?;
            let refine = messages[..i].iter().find(|m| m.role == Role::User && m.content.contains(markers::NON_PREFERRED.0))?;
            return Some(Ask::Calibrate { refine_prompt: &refine.content, refine_reply: &reply.content, turn: text });
        }
        return Some(Ask::Answer { text });
    }
    None
}

/// The text between a pair of tags.
fn block<'a>(text: &'a str, tags: (&str, &str)) -> Option<&'a str> {
    let s = text.find(tags.0)? + tags.0.len();
    let e = text[s..].find(tags.1)? + s;
    Some(text[s..e].trim())
}

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn word_count(messages: &[Message]) -> u64 {
    messages.iter().map(|m| split_words(&m.content).len() as u64 + 4).sum()
}

impl EmbeddedBackend {
    /// Panics on an invalid config; use [`EmbeddedBackend::try_new`] for configs from files.
    pub fn new(cfg: EmbeddedConfig) -> Self {
        Self::try_new(cfg).expect("valid embedded teacher config")
    }

    pub fn try_new(cfg: EmbeddedConfig) -> Result<Self, BackendError> {
        for (name, p) in [
            ("format_error_rate", cfg.format_error_rate),
            ("refine_failure_rate", cfg.refine_failure_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(BackendError::Config(format!("{name} must lie in [0, 1], got {p}")));
            }
        }
        for (name, x) in [
            ("judge_noise", cfg.judge_noise),
            ("calibration_noise", cfg.calibration_noise),
        ] {
            if !(x >= 0.0 && x.is_finite()) {
                return Err(BackendError::Config(format!("{name} must be a finite number >= 0, got {x}")));
            }
        }
        if !(cfg.position_bias.is_finite() && cfg.decoration_bias.is_finite()) {
            return Err(BackendError::Config("position_bias and decoration_bias must be finite".into()));
        }
        Ok(Self { cfg, counters: Counters::default() })
    }

    pub fn config(&self) -> &EmbeddedConfig {
        &self.cfg
    }

    fn rng_for(&self, request: &ChatRequest) -> ChaCha8Rng {
        // Asking for log-probs must not change the answer.
        let answer_request = ChatRequest { top_logprobs: None, ..request.clone() };
        let key = sha256_hex(format!("{}|{}", self.cfg.seed, canonical_json(&answer_request)).as_bytes());
        let seed = u64::from_str_radix(&key[..16], 16).expect("hex digest");
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn judge_score(&self, rng: &mut ChaCha8Rng, q: &Question, response: &str, first: bool) -> f64 {
        let mut s = world::quality(q, response) + self.cfg.judge_noise * gaussian(rng);
        s += self.cfg.decoration_bias * world::decoration_features(response) as f64;
        if first {
            s += self.cfg.position_bias;
        }
        s
    }

    fn describe(q: &Question, response: &str) -> String {
        match world::answer_number(response) {
            Some(x) if x == q.answer() => format!("gives {x}, which is right"),
            Some(x) => format!("gives {x}, but {} {} {} is {}", q.a, q.op.word(), q.b, q.answer()),
            None => "gives no number at all".to_string(),
        }
    }

    fn judge(&self, rng: &mut ChaCha8Rng, prompt: &str) -> String {
        let (Some(ctx), Some(a), Some(b)) =
            (block(prompt, markers::CONTEXT), block(prompt, markers::RESPONSE_A), block(prompt, markers::RESPONSE_B))
        else {
            return "I cannot find the two responses to compare.".into();
        };
        let Some(q) = Question::find_in(ctx) else {
            return "I can only grade answers to arithmetic questions.".into();
        };
        let raw_a = self.judge_score(rng, &q, a, true);
        let raw_b = self.judge_score(rng, &q, b, false);
        let mut sa = raw_a.round().clamp(1.0, 10.0);
        let mut sb = raw_b.round().clamp(1.0, 10.0);
        if sa == sb && prompt.contains("rarely of exactly the same quality") {
            // Asked to avoid ties: prefer the plainer, then the shorter answer (a content
            // preference, so both presentation orders agree), then the first impression.
            let key = |s: &str| (world::decoration_features(s), s.len());
            let a_wins = match key(a).cmp(&key(b)) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => raw_a >= raw_b,
            };
            let (win, lose) = if a_wins { (&mut sa, &mut sb) } else { (&mut sb, &mut sa) };
            if *win < 10.0 {
                *win += 1.0;
            } else {
                *lose -= 1.0;
            }
        }
        if rng.random_bool(self.cfg.format_error_rate) {
            return format!("Response {} is better.", if sa >= sb { "A" } else { "B" });
        }
        format!(
            "{}\nResponse A {}. Response B {}.\n{}\nScores: {} {}",
            markers::REASONING.0,
            Self::describe(&q, a),
            Self::describe(&q, b),
            markers::REASONING.1,
            sa,
            sb
        )
    }

    fn refine(&self, rng: &mut ChaCha8Rng, prompt: &str) -> String {
        let (Some(ctx), Some(rejected)) = (block(prompt, markers::CONTEXT), block(prompt, markers::NON_PREFERRED)) else {
            return "I cannot find the response to improve.".into();
        };
        let Some(q) = Question::find_in(ctx) else {
            return "I can only improve answers to arithmetic questions.".into();
        };
        let botch = rng.random_bool(self.cfg.refine_failure_rate);
        let (diagnosis, modified) = if botch {
            let wrong = q.answer() + if rng.random_bool(0.5) { 1 } else { -1 };
            let m = world::fix_with(&q, rejected, wrong).unwrap_or_else(|| rejected.to_string());
            (format!("The non-preferred response {}. I will change its answer.", Self::describe(&q, rejected)), m)
        } else {
            match world::minimal_fix(&q, rejected) {
                Some(m) => (
                    format!(
                        "The non-preferred response {}. Replacing its answer with {} fixes it; nothing else needs to change.",
                        Self::describe(&q, rejected),
                        q.answer()
                    ),
                    m,
                ),
                None => ("The non-preferred response is already correct; it needs no change.".into(), rejected.to_string()),
            }
        };
        if rng.random_bool(self.cfg.format_error_rate) {
            return diagnosis;
        }
        format!(
            "{}\n{diagnosis}\n{}\n{}\n{modified}\n{}",
            markers::REASONING.0,
            markers::REASONING.1,
            markers::MODIFIED.0,
            markers::MODIFIED.1
        )
    }

    fn calibrate(&self, rng: &mut ChaCha8Rng, refine_prompt: &str, refine_reply: &str, turn: &str) -> String {
        let q = block(refine_prompt, markers::CONTEXT).and_then(Question::find_in);
        let rejected = block(refine_prompt, markers::NON_PREFERRED);
        let modified = parse::parse_refinement(refine_reply, false, RefineParsePolicy::default()).ok();
        let earlier = parse::numbers(turn).first().map(|n| n.value);
        let (Some(q), Some(rejected), Some(modified), Some(earlier)) = (q, rejected, modified, earlier) else {
            return "I cannot tell which response to score.".into();
        };
        let delta = world::quality(&q, &modified.modified) - world::quality(&q, rejected);
        let score = (earlier + delta + self.cfg.calibration_noise * gaussian(rng)).round().clamp(1.0, 10.0);
        if rng.random_bool(self.cfg.format_error_rate) {
            return "It is clearly better than before.".into();
        }
        format!("{score}")
    }

    fn answer(&self, rng: &mut ChaCha8Rng, text: &str, temperature: f64) -> String {
        let Some(q) = Question::find_in(text) else {
            return "I can only answer arithmetic questions.".into();
        };
        if rng.random_bool(self.cfg.format_error_rate) {
            return String::new();
        }
        // Sampling picks among the plain answer forms; greedy always writes the first.
        if temperature > 0.0 && rng.random_bool(0.5) {
            format!("{} {} {} is {}.", q.a, q.op.word(), q.b, q.answer())
        } else {
            world::reference_answer(&q)
        }
    }

    /// Top-k log-probs of `reply`, token by token. For an answer to a world question they
    /// come from the teacher's own distribution over its answers (see [`answer_distribution`]):
    /// at each position, the probability of every next token given the tokens so far. Past a
    /// token that distribution does not produce (other replies, or text it cannot generate),
    /// each token gets a fixed sub-distribution: the emitted token most, its numeric
    /// neighbours or a few common words the rest. Deterministic.
    fn logprobs(reply: &str, question: Option<&Question>, k: u32) -> TeacherLogprobs {
        let tokens = reply_tokens(reply);
        let candidates = question.map(answer_distribution).unwrap_or_default();
        let mut alive: Vec<&(Vec<String>, f64)> = candidates.iter().collect();
        let mut out = Vec::with_capacity(tokens.len());
        for (i, tok) in tokens.iter().enumerate() {
            let mut next: Vec<(String, f64)> = Vec::new();
            let total: f64 = alive.iter().map(|c| c.1).sum();
            for (seq, p) in &alive {
                if let Some(t) = seq.get(i) {
                    match next.iter_mut().find(|(x, _)| x == t) {
                        Some((_, m)) => *m += p / total,
                        None => next.push((t.clone(), p / total)),
                    }
                }
            }
            let dist = match next.iter().find(|(x, _)| x == tok) {
                Some(_) => {
                    alive.retain(|c| c.0.get(i).is_some_and(|t| t == tok));
                    next
                }
                None => {
                    alive.clear();
                    fallback_distribution(tok)
                }
            };
            let logprob = dist.iter().find(|(x, _)| x == tok).map(|(_, p)| p.ln()).expect("the emitted token is listed");
            let mut top: Vec<(String, f64)> = dist;
            top.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(k as usize);
            out.push(GeneratedToken {
                token: TokenLogprob::text(*tok, logprob),
                top: top.into_iter().map(|(t, p)| TokenLogprob::text(t, p.ln())).collect(),
            });
        }
        TeacherLogprobs::new(out)
    }

    /// Answers a request synchronously (no latency); the async path adds the latency.
    pub fn reply(&self, request: &ChatRequest) -> Completion {
        let mut rng = self.rng_for(request);
        let temperature = request.sampling.temperature.unwrap_or(1.0);
        let mut question = None;
        let text = match classify(&request.messages) {
            Some(Ask::Judge { prompt }) => self.judge(&mut rng, prompt),
            Some(Ask::Refine { prompt }) => self.refine(&mut rng, prompt),
            Some(Ask::Calibrate { refine_prompt, refine_reply, turn }) => {
                self.calibrate(&mut rng, refine_prompt, refine_reply, turn)
            }
            Some(Ask::Answer { text }) => {
                question = Question::find_in(text);
                self.answer(&mut rng, text, temperature)
            }
            None => "There is no question to answer.".into(),
        };
        let usage = Usage { prompt_tokens: word_count(&request.messages), completion_tokens: split_words(&text).len() as u64 };
        let logprobs = request.top_logprobs.map(|k| Self::logprobs(&text, question.as_ref(), k));
        Completion {
            text,
            reasoning: None,
            finish_reason: Some("stop".into()),
            usage,
            logprobs,
            model: Some("embedded-world".into()),
            cached: false,
        }
    }
}

/// A reply as a server's tokens: every word or punctuation mark of [`split_words`] with
/// the whitespace before it, so the tokens concatenate to the reply (trailing whitespace is
/// a token of its own).
fn reply_tokens(reply: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut from = 0;
    for w in split_words(reply) {
        let end = w.as_ptr() as usize - reply.as_ptr() as usize + w.len();
        out.push(&reply[from..end]);
        from = end;
    }
    if from < reply.len() {
        out.push(&reply[from..]);
    }
    out
}

/// The answers the teacher might give to `q`, as token sequences with probabilities: the
/// plain answer forms (the reference form most likely) times the answer number (the right one
/// most likely, near misses the rest; never negative). Sums to 1.
fn answer_distribution(q: &Question) -> Vec<(Vec<String>, f64)> {
    const FORMS: [(&str, f64); 4] = [("The answer is {c}.", 0.55), ("{a} {op} {b} is {c}.", 0.35), ("It is {c}.", 0.07), ("{c}.", 0.03)];
    let c = q.answer();
    let numbers: Vec<(i64, f64)> =
        [(c, 0.84), (c + 1, 0.05), (c - 1, 0.05), (c + 2, 0.02), (c - 2, 0.02), (c + 10, 0.02)].into_iter().filter(|(n, _)| *n >= 0).collect();
    let mass: f64 = numbers.iter().map(|(_, p)| p).sum();
    let mut out = Vec::new();
    for (form, pf) in FORMS {
        for &(n, pn) in &numbers {
            let text = form.replace("{a}", &q.a.to_string()).replace("{op}", q.op.word()).replace("{b}", &q.b.to_string()).replace("{c}", &n.to_string());
            out.push((reply_tokens(&text).into_iter().map(String::from).collect(), pf * pn / mass));
        }
    }
    out
}

/// A token outside the answer distribution: 0.9 on the token (0.7 for a number), the rest
/// spread over its numeric neighbours or a few common words, with the token's leading space.
fn fallback_distribution(tok: &str) -> Vec<(String, f64)> {
    const FILLERS: [&str; 4] = ["The", "is", "It", "."];
    let word = tok.trim_start();
    let space = &tok[..tok.len() - word.len()];
    let alts: Vec<String> = match word.parse::<i64>() {
        Ok(n) => [n + 1, n - 1, n + 10].into_iter().filter(|x| *x >= 0).map(|x| format!("{space}{x}")).collect(),
        Err(_) => FILLERS.iter().filter(|f| **f != word).map(|f| format!("{space}{f}")).collect(),
    };
    let p_top = if word.parse::<i64>().is_ok() { 0.7 } else { 0.9 };
    let rest = (1.0 - p_top) / alts.len() as f64;
    let mut out = vec![(tok.to_string(), p_top)];
    out.extend(alts.into_iter().map(|a| (a, rest)));
    out
}

impl ChatBackend for EmbeddedBackend {
    fn complete<'a>(&'a self, request: &'a ChatRequest) -> BoxFuture<'a, Result<Completion, BackendError>> {
        Box::pin(async move {
            bump(&self.counters.requests);
            bump(&self.counters.attempts);
            if self.cfg.latency_ms > 0 {
                tokio::time::sleep(Duration::from_millis(self.cfg.latency_ms)).await;
            }
            let c = self.reply(request);
            self.counters.add_usage(c.usage);
            bump(&self.counters.succeeded);
            Ok(c)
        })
    }

    fn info(&self) -> BackendInfo {
        let mut settings = serde_json::to_value(&self.cfg).expect("serializable config");
        // Latency changes speed, not answers.
        settings.as_object_mut().expect("struct").remove("latency_ms");
        BackendInfo { kind: "embedded".into(), model: "embedded-world".into(), endpoints: vec![], settings }
    }

    fn supports_logprobs(&self) -> bool {
        true
    }

    fn stats(&self) -> BackendStats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompts::{PromptKind, PromptSet};
    use crate::request::Sampling;
    use serde_json::json;

    fn judge_request(a: &str, b: &str) -> ChatRequest {
        let text = PromptSet::default()
            .render(PromptKind::Judge, json!({"context": "What is 7 plus 5?", "response_a": a, "response_b": b, "avoid_ties": false}))
            .unwrap()
            .unwrap();
        ChatRequest::new(vec![Message::user(text)], Sampling::greedy(256))
    }

    #[test]
    fn judge_is_deterministic_and_parseable() {
        let t = EmbeddedBackend::new(EmbeddedConfig { judge_noise: 0.0, position_bias: 0.0, ..Default::default() });
        let r = judge_request("It is 12.", "Sure! It is **13**. Hope this helps!");
        let c1 = t.reply(&r);
        assert_eq!(c1, t.reply(&r));
        assert_eq!(parse::parse_pair_scores(&c1.text, Default::default()), Ok((9.0, 4.0)));
    }

    #[test]
    fn position_bias_favours_the_first_slot() {
        let t = EmbeddedBackend::new(EmbeddedConfig { judge_noise: 0.0, position_bias: 1.0, ..Default::default() });
        let (a, _) = parse::parse_pair_scores(&t.reply(&judge_request("It is 12.", "It is 13.")).text, Default::default()).unwrap();
        let (_, a2) = parse::parse_pair_scores(&t.reply(&judge_request("It is 13.", "It is 12.")).text, Default::default()).unwrap();
        assert_eq!((a, a2), (10.0, 9.0));
    }

    #[test]
    fn noise_has_the_configured_spread() {
        let t = EmbeddedBackend::new(EmbeddedConfig { judge_noise: 1.0, position_bias: 0.0, ..Default::default() });
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let q = Question { a: 2, op: world::Op::Plus, b: 2 };
        let xs: Vec<f64> = (0..4000).map(|_| t.judge_score(&mut rng, &q, "It is 5.", false)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((mean - 4.0).abs() < 0.06 && (var.sqrt() - 1.0).abs() < 0.05, "{mean} {var}");
    }

    #[test]
    fn answer_logprobs_follow_the_teacher_distribution() {
        let q = Question { a: 7, op: world::Op::Plus, b: 5 };
        let lp = EmbeddedBackend::logprobs("The answer is 12.", Some(&q), 3);
        let texts: Vec<&str> = lp.tokens.iter().map(|t| t.token.text.as_deref().unwrap()).collect();
        assert_eq!(texts, ["The", " answer", " is", " 12", "."]);
        assert_eq!(lp.concatenated_bytes().unwrap(), b"The answer is 12.");
        // First token: the forms' first words; "7" opens "7 plus 5 is 12.", "12" opens "12.".
        let first: Vec<(&str, f64)> = lp.tokens[0].top.iter().map(|t| (t.text.as_deref().unwrap(), t.logprob.exp())).collect();
        assert_eq!(first.iter().map(|x| x.0).collect::<Vec<_>>(), ["The", "7", "It"]);
        for ((_, p), want) in first.iter().zip([0.55, 0.35, 0.07]) {
            assert!((p - want).abs() < 1e-12, "{first:?}");
        }
        // After "The": " answer" is certain.
        assert!(lp.tokens[1].token.logprob.abs() < 1e-12);
        // The number: 0.84 on the right one, then the near misses (ties broken by text).
        let num: Vec<(&str, f64)> = lp.tokens[3].top.iter().map(|t| (t.text.as_deref().unwrap(), t.logprob.exp())).collect();
        assert_eq!(num.iter().map(|x| x.0).collect::<Vec<_>>(), [" 12", " 11", " 13"]);
        assert!((num[0].1 - 0.84).abs() < 1e-12 && (num[1].1 - 0.05).abs() < 1e-12, "{num:?}");
        assert_eq!(lp.tokens[3].token.logprob, lp.tokens[3].top[0].logprob);
        // Every position is a (sub-)distribution; k = 0 keeps the sampled tokens only.
        for t in &EmbeddedBackend::logprobs("The answer is 12.", Some(&q), 50).tokens {
            let mass: f64 = t.top.iter().map(|x| x.logprob.exp()).sum();
            assert!((mass - 1.0).abs() < 1e-9, "{mass}");
        }
        assert!(EmbeddedBackend::logprobs("The answer is 12.", Some(&q), 0).tokens.iter().all(|t| t.top.is_empty()));
    }

    #[test]
    fn off_distribution_text_gets_the_fallback_and_answers_do_not_depend_on_logprobs() {
        let lp = EmbeddedBackend::logprobs("Sure! It is **12**.", None, 4);
        assert_eq!(lp.concatenated_bytes().unwrap(), b"Sure! It is **12**.");
        let twelve = &lp.tokens[6];
        assert_eq!(twelve.token.text.as_deref(), Some("12"));
        assert!((twelve.token.logprob.exp() - 0.7).abs() < 1e-12);
        assert_eq!(twelve.top.iter().map(|t| t.text.as_deref().unwrap()).collect::<Vec<_>>(), ["12", "11", "13", "22"]);
        // A zero answer has no negative neighbour.
        let zero = EmbeddedBackend::logprobs("0", None, 5);
        assert_eq!(zero.tokens[0].top.len(), 3);
        // Same request with and without log-probs: the same answer.
        let t = EmbeddedBackend::new(EmbeddedConfig::default());
        let mut r = ChatRequest::new(vec![Message::user("What is 8 times 3?")], Sampling::reference_default());
        let plain = t.reply(&r);
        r.top_logprobs = Some(5);
        let with = t.reply(&r);
        assert_eq!(plain.text, with.text);
        assert_eq!(with.logprobs.unwrap().concatenated_bytes().unwrap(), with.text.as_bytes());
    }
}
