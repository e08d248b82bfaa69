//! Teacher log-probs recorded at synthesis time: for every token the teacher generated in its
//! own answer y_T, the sampled token and the top-k alternatives the teacher reported, each with
//! its log-probability. Training uses them as the target of the token-level KL regularizer
//! when no local copy of the teacher is at hand.
//!
//! A token is known by its id in the teacher's vocabulary (vLLM with
//! `return_tokens_as_token_ids`, the only exact source), by its text (what OpenAI-compatible
//! servers return), or both. `bytes` keeps a token's exact bytes when its text cannot (a token
//! that ends inside a multi-byte character).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One token and its log-probability under the teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// The token's id in the teacher's vocabulary, when the server reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// The token's decoded text (with its leading space, if any), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The token's exact bytes, stored only when `text` cannot hold them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    /// Natural log of the probability; finite and <= 0.
    pub logprob: f64,
}

impl TokenLogprob {
    /// A token known by its text.
    pub fn text(text: impl Into<String>, logprob: f64) -> Self {
        Self { id: None, text: Some(text.into()), bytes: None, logprob }
    }

    /// A token known by its id.
    pub fn id(id: u32, logprob: f64) -> Self {
        Self { id: Some(id), text: None, bytes: None, logprob }
    }

    /// The token's exact bytes: `bytes`, else the text's UTF-8; `None` when only the id is known.
    pub fn token_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match (&self.bytes, &self.text) {
            (Some(b), _) => Some(Cow::Borrowed(b.as_slice())),
            (None, Some(t)) => Some(Cow::Borrowed(t.as_bytes())),
            (None, None) => None,
        }
    }

    /// How the token reads in messages: its text, else its id.
    pub fn describe(&self) -> String {
        match (&self.text, self.id) {
            (Some(t), Some(id)) => format!("{t:?} (id {id})"),
            (Some(t), None) => format!("{t:?}"),
            (None, Some(id)) => format!("id {id}"),
            (None, None) => match &self.bytes {
                Some(b) => format!("bytes {b:?}"),
                None => "<unknown token>".into(),
            },
        }
    }

    /// Checks one token; the error is (sub-path, problem).
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.id.is_none() && self.text.is_none() && self.bytes.is_none() {
            return Err(("", "a token needs an `id`, a `text` or `bytes`".into()));
        }
        if !self.logprob.is_finite() {
            return Err(("logprob", format!("non-finite log-probability {}", self.logprob)));
        }
        if self.logprob > 0.0 {
            return Err(("logprob", format!("log-probability {} is positive", self.logprob)));
        }
        Ok(())
    }
}

/// One generated token: the sampled token and the alternatives the teacher reported, most
/// likely first (the sampled token may or may not be among them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedToken {
    #[serde(flatten)]
    pub token: TokenLogprob,
    #[serde(default)]
    pub top: Vec<TokenLogprob>,
}

/// The teacher's log-probs over its whole answer, one entry per generated token, in order.
/// The tokens' texts concatenate to the answer (`PreferencePair::teacher_response`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TeacherLogprobs {
    pub tokens: Vec<GeneratedToken>,
}

/// Why a [`TeacherLogprobs`] value is invalid: the sub-path (`[3].top[1].logprob`) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogprobsError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for LogprobsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for LogprobsError {}

impl TeacherLogprobs {
    pub fn new(tokens: Vec<GeneratedToken>) -> Self {
        Self { tokens }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The largest number of alternatives at any position.
    pub fn max_top(&self) -> usize {
        self.tokens.iter().map(|t| t.top.len()).max().unwrap_or(0)
    }

    /// Every rule a stored value must satisfy: at least one token; every token (sampled or
    /// alternative) identified by an id, a text or bytes, with a finite log-probability <= 0.
    pub fn validate(&self) -> Result<(), LogprobsError> {
        if self.tokens.is_empty() {
            return Err(LogprobsError { path: String::new(), message: "no tokens".into() });
        }
        let join = |base: String, sub: &str| if sub.is_empty() { base } else { format!("{base}.{sub}") };
        for (i, t) in self.tokens.iter().enumerate() {
            t.token.check().map_err(|(sub, message)| LogprobsError { path: join(format!("[{i}]"), sub), message })?;
            for (j, alt) in t.top.iter().enumerate() {
                alt.check().map_err(|(sub, message)| LogprobsError { path: join(format!("[{i}].top[{j}]"), sub), message })?;
            }
        }
        Ok(())
    }

    /// The concatenated bytes of the sampled tokens; `None` if some token is known only by id.
    pub fn concatenated_bytes(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for t in &self.tokens {
            out.extend_from_slice(&t.token.token_bytes()?);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(text: &str, lp: f64, top: &[(&str, f64)]) -> GeneratedToken {
        GeneratedToken { token: TokenLogprob::text(text, lp), top: top.iter().map(|(t, l)| TokenLogprob::text(*t, *l)).collect() }
    }

    #[test]
    fn serde_shape_is_a_flat_list() {
        let lp = TeacherLogprobs::new(vec![
            tok("Hi", -0.1, &[("Hi", -0.1), ("Hey", -2.5)]),
            GeneratedToken { token: TokenLogprob { id: Some(7), text: None, bytes: Some(vec![0xe2, 0x80]), logprob: 0.0 }, top: vec![] },
        ]);
        let v = serde_json::to_value(&lp).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"text": "Hi", "logprob": -0.1, "top": [{"text": "Hi", "logprob": -0.1}, {"text": "Hey", "logprob": -2.5}]},
                {"id": 7, "bytes": [226, 128], "logprob": 0.0, "top": []}
            ])
        );
        assert_eq!(serde_json::from_value::<TeacherLogprobs>(v).unwrap(), lp);
        assert_eq!(lp.max_top(), 2);
    }

    #[test]
    fn validation_names_the_bad_entry() {
        let ok = TeacherLogprobs::new(vec![tok("a", -0.5, &[("a", -0.5)]), tok(" b", -1.0, &[])]);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.concatenated_bytes().unwrap(), b"a b");
        assert_eq!(TeacherLogprobs::default().validate().unwrap_err().message, "no tokens");
        let bad = TeacherLogprobs::new(vec![tok("a", -0.5, &[("a", -0.5), ("c", 0.25)])]);
        assert_eq!(bad.validate().unwrap_err().path, "[0].top[1].logprob");
        let nan = TeacherLogprobs::new(vec![tok("a", -0.5, &[]), tok("b", f64::NAN, &[])]);
        assert_eq!(nan.validate().unwrap_err().path, "[1].logprob");
        let anon = TeacherLogprobs::new(vec![GeneratedToken {
            token: TokenLogprob { id: None, text: None, bytes: None, logprob: -1.0 },
            top: vec![],
        }]);
        assert_eq!(anon.validate().unwrap_err().path, "[0]");
        let ids = TeacherLogprobs::new(vec![GeneratedToken { token: TokenLogprob::id(3, -0.1), top: vec![] }]);
        assert_eq!(ids.concatenated_bytes(), None);
    }
}
