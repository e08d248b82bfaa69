//! Fitting a completion's token log-probs to the answer the pipeline keeps.
//!
//! The stored answer y_T is the completion with thinking blocks removed and whitespace
//! trimmed ([`crate::parse::strip_thinking`]), while a server reports log-probs for every
//! generated token. The tokens that spell exactly y_T are kept; anything else is an error,
//! because training aligns these tokens one by one with the student's tokenization of y_T.

use rmd_core::TeacherLogprobs;

/// The tokens of `lp` that spell `answer`, which must be `raw` (the completion text) with
/// a thinking block removed and/or surrounding whitespace trimmed. Tokens known only by id
/// cannot be located in text: they are accepted only when `answer == raw`.
pub fn align_logprobs(lp: &TeacherLogprobs, raw: &str, answer: &str) -> Result<TeacherLogprobs, String> {
    if answer.is_empty() {
        return Err("the answer is empty".into());
    }
    let Some(spelled) = lp.concatenated_bytes() else {
        if raw == answer && !lp.is_empty() {
            return Ok(lp.clone());
        }
        return Err(
            "some tokens are known only by id, so the kept answer (thinking removed, whitespace trimmed) cannot be located among them"
                .into(),
        );
    };
    if spelled == answer.as_bytes() {
        return Ok(lp.clone());
    }
    let Some(start) = find_last(&spelled, answer.as_bytes()) else {
        return Err(format!(
            "the tokens spell {:?}, which does not contain the answer",
            preview(&String::from_utf8_lossy(&spelled))
        ));
    };
    let end = start + answer.len();
    // Token boundaries as byte offsets into `spelled`.
    let mut bounds = vec![0usize];
    for t in &lp.tokens {
        let n = t.token.token_bytes().map_or(0, |b| b.len());
        bounds.push(bounds.last().unwrap() + n);
    }
    let (Some(first), Some(last)) = (bounds.iter().position(|&b| b == start), bounds.iter().position(|&b| b == end)) else {
        return Err(format!(
            "the answer starts or ends inside a token (bytes {start}..{end} of {:?})",
            preview(&String::from_utf8_lossy(&spelled))
        ));
    };
    let before = String::from_utf8_lossy(&spelled[..start]);
    let after = &spelled[end..];
    let before_ok = before.trim().is_empty() || before.trim_end().ends_with("</think>");
    if !before_ok || !after.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "the tokens around the answer are not a thinking block or whitespace ({:?} before, {:?} after)",
            preview(&before),
            preview(&String::from_utf8_lossy(after))
        ));
    }
    Ok(TeacherLogprobs::new(lp.tokens[first..last].to_vec()))
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).rev().find(|&i| &hay[i..i + needle.len()] == needle)
}

fn preview(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmd_core::{GeneratedToken, TokenLogprob};

    fn lp(tokens: &[&str]) -> TeacherLogprobs {
        TeacherLogprobs::new(tokens.iter().map(|t| GeneratedToken { token: TokenLogprob::text(*t, -0.5), top: vec![] }).collect())
    }

    fn texts(lp: &TeacherLogprobs) -> Vec<String> {
        lp.tokens.iter().map(|t| t.token.text.clone().unwrap()).collect()
    }

    #[test]
    fn exact_and_trimmed_answers_align() {
        let l = lp(&["It", " is", " 4", "."]);
        assert_eq!(align_logprobs(&l, "It is 4.", "It is 4.").unwrap(), l);
        let think = lp(&["<think>", "hmm", "</think>", "\n\n", "It", " is", " 4", ".", "\n"]);
        let raw = "<think>hmm</think>\n\nIt is 4.\n";
        assert_eq!(texts(&align_logprobs(&think, raw, "It is 4.").unwrap()), ["It", " is", " 4", "."]);
    }

    #[test]
    fn misaligned_answers_are_errors() {
        // The answer starts inside a token ("\nIt" merged).
        let merged = lp(&["</think>", "\nIt", " is", " 4."]);
        let e = align_logprobs(&merged, "</think>\nIt is 4.", "It is 4.").unwrap_err();
        assert!(e.contains("inside a token"), "{e}");
        // Tokens that do not spell the answer at all.
        let e = align_logprobs(&lp(&["It", " is", " 5."]), "It is 4.", "It is 4.").unwrap_err();
        assert!(e.contains("does not contain"), "{e}");
        // Real text outside the answer is not silently cut.
        let e = align_logprobs(&lp(&["Note:", "\n", "It", " is", " 4."]), "Note:\nIt is 4.", "It is 4.").unwrap_err();
        assert!(e.contains("not a thinking block"), "{e}");
        // Id-only tokens: accepted as they are, unless the answer had to be cut out.
        let ids = TeacherLogprobs::new(vec![GeneratedToken { token: TokenLogprob::id(5, -0.1), top: vec![] }]);
        assert_eq!(align_logprobs(&ids, "x", "x").unwrap(), ids);
        assert!(align_logprobs(&ids, " x", "x").is_err());
    }
}
