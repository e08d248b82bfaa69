//! Stored teacher log-probs on the student's side (the `kl_source = "stored"` KL target).
//!
//! Synthesis stores, per token of the teacher's answer y_T, the sampled token and its top-k
//! alternatives ([`rmd_core::TeacherLogprobs`]). For a token-level KL the teacher's positions
//! must be the student's positions, so the student's tokenization of y_T (inside its chat
//! template) has to be exactly the teacher's token sequence. Each teacher token is mapped to a
//! student id (its id when the server gave one, else its text looked up in the student's
//! vocabulary, spelled the way that tokenizer spells tokens), the student tokens that cover
//! y_T are located in the encoded row through the tokenizer's offsets, and the two sequences
//! are compared token by token. Any difference is an error naming the first position; nothing
//! is dropped or guessed.

use std::ops::Range;

use rmd_core::{Conversation, TeacherLogprobs, TokenLogprob};
use rmd_model::{EncodedText, TextEncoder};
use serde_json::Value;

/// One pair's stored teacher distribution in student ids: per teacher token, the candidate
/// ids (the top-k alternatives, plus the sampled token when the top-k lacks it) and their
/// teacher log-probs. Flat buffers: `offsets[j]..offsets[j + 1]` are token `j`'s candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTopK {
    /// Index in the LM row's ids (before truncation) of the first teacher token; teacher
    /// token `j` is at `start + j`.
    pub start: usize,
    offsets: Vec<u32>,
    ids: Vec<u32>,
    logprobs: Vec<f32>,
}

impl StoredTopK {
    /// Number of teacher tokens.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Candidate student ids and teacher log-probs of teacher token `j`.
    pub fn candidates(&self, j: usize) -> (&[u32], &[f32]) {
        let r = self.offsets[j] as usize..self.offsets[j + 1] as usize;
        (&self.ids[r.clone()], &self.logprobs[r])
    }

    /// The largest student id referenced (for a vocabulary check against the model).
    pub fn max_id(&self) -> u32 {
        self.ids.iter().copied().max().unwrap_or(0)
    }
}

/// How a tokenizer writes tokens in its vocabulary.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spelling {
    /// GPT-2 style byte-level BPE: every byte is one printable character (space -> `Ġ`).
    ByteLevel,
    /// SentencePiece style: spaces are `replacement` (`▁`), with optional `<0xNN>` byte tokens.
    Metaspace { replacement: char, byte_fallback: bool },
    /// Whitespace is split off before the model and never part of a token (word-level, BERT).
    WhitespaceFree,
    /// Tokens are their text.
    Plain,
}

/// The student's vocabulary, for looking up teacher tokens.
pub struct StudentVocab<'a> {
    encoder: &'a TextEncoder,
    spelling: Spelling,
    size: usize,
}

impl<'a> StudentVocab<'a> {
    pub fn new(encoder: &'a TextEncoder) -> Self {
        let tokenizer = encoder.tokenizer();
        let spec: Value = tokenizer.to_string(false).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null);
        Self { encoder, spelling: spelling_of(&spec), size: tokenizer.get_vocab_size(true) }
    }

    fn id_of(&self, token: &str) -> Option<u32> {
        self.encoder.tokenizer().token_to_id(token)
    }

    /// The student id of a teacher token: its id if given (and in range), else its text.
    pub fn lookup(&self, t: &TokenLogprob) -> Option<u32> {
        if let Some(id) = t.id {
            return ((id as usize) < self.size).then_some(id);
        }
        let bytes = t.token_bytes()?;
        let text = std::str::from_utf8(&bytes).ok();
        match self.spelling {
            Spelling::ByteLevel => {
                let s: String = bytes.iter().map(|&b| byte_char(b)).collect();
                self.id_of(&s)
            }
            Spelling::Metaspace { replacement, byte_fallback } => {
                let by_text = text.and_then(|s| self.id_of(&s.replace(' ', &replacement.to_string())));
                by_text.or_else(|| match (byte_fallback, &bytes[..]) {
                    (true, [b]) => self.id_of(&format!("<0x{b:02X}>")),
                    _ => None,
                })
            }
            Spelling::WhitespaceFree => text.map(str::trim).filter(|s| !s.is_empty()).and_then(|s| self.id_of(s)),
            Spelling::Plain => text.and_then(|s| self.id_of(s)),
        }
    }

    fn show(&self, id: u32) -> String {
        match self.encoder.tokenizer().id_to_token(id) {
            Some(s) => format!("{s:?} (id {id})"),
            None => format!("id {id}"),
        }
    }
}

/// Reads the spelling off a `tokenizer.json` value: its pre-tokenizer, normalizer, decoder
/// and model (nested `Sequence`s included).
fn spelling_of(spec: &Value) -> Spelling {
    let mut types = Vec::new();
    for key in ["pre_tokenizer", "normalizer", "decoder"] {
        collect_types(&spec[key], &mut types);
    }
    let has = |t: &str| types.iter().any(|(ty, _)| ty == t);
    if has("ByteLevel") {
        return Spelling::ByteLevel;
    }
    // Metaspace pre-tokenizer/decoder, or Llama-2 style: a normalizer replacing " " by "▁".
    let replacement = types.iter().find_map(|(ty, v)| match ty.as_str() {
        "Metaspace" => Some(v["replacement"].as_str().and_then(|s| s.chars().next()).unwrap_or('\u{2581}')),
        "Replace" if v["content"].as_str() == Some("\u{2581}") => Some('\u{2581}'),
        _ => None,
    });
    if let Some(replacement) = replacement {
        let byte_fallback = spec["model"]["byte_fallback"].as_bool().unwrap_or(false);
        return Spelling::Metaspace { replacement, byte_fallback };
    }
    if has("Whitespace") || has("WhitespaceSplit") || has("BertPreTokenizer") {
        return Spelling::WhitespaceFree;
    }
    Spelling::Plain
}

fn collect_types(v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            if let Some(t) = o.get("type").and_then(Value::as_str) {
                out.push((t.to_string(), v.clone()));
            }
            for key in ["pretokenizers", "normalizers", "decoders"] {
                if let Some(Value::Array(items)) = o.get(key) {
                    for item in items {
                        collect_types(item, out);
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_types(i, out)),
        _ => {}
    }
}

/// GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the other
/// 68 bytes take the characters from U+0100 on, in byte order.
pub fn byte_char(b: u8) -> char {
    let printable = |x: u8| matches!(x, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + rank).expect("U+0100..U+0143 are characters")
}

/// Maps `lp` (the teacher's tokens over `response`) onto the student's encoding `enc` of
/// (`prompt`, `response`). Errors name the first teacher token that does not line up.
pub fn encode_stored_topk(
    encoder: &TextEncoder,
    vocab: &StudentVocab,
    prompt: &Conversation,
    response: &str,
    lp: &TeacherLogprobs,
    enc: &EncodedText,
) -> Result<StoredTopK, String> {
    let span = response_tokens(encoder, prompt, response, enc)?;
    let student = &enc.ids[span.clone()];
    let (mut offsets, mut ids, mut logprobs) = (vec![0u32], Vec::new(), Vec::new());
    for j in 0..lp.len().max(student.len()) {
        let (Some(t), Some(&s)) = (lp.tokens.get(j), student.get(j)) else {
            return Err(if j >= lp.len() {
                format!(
                    "the student's tokenization of the teacher response has {} tokens but the teacher generated {}; student token {j} is {}",
                    student.len(),
                    lp.len(),
                    vocab.show(student[j])
                )
            } else {
                format!(
                    "the teacher generated {} tokens but the student's tokenization of the teacher response has {}; teacher token {j} is {}",
                    lp.len(),
                    student.len(),
                    lp.tokens[j].token.describe()
                )
            });
        };
        let sampled = vocab.lookup(&t.token).ok_or_else(|| {
            format!("teacher token {j} ({}) is not in the student's vocabulary", t.token.describe())
        })?;
        if sampled != s {
            return Err(format!(
                "the student's tokenization of the teacher response differs from the teacher's tokens at token {j}: \
                 teacher {} is student {}, but the student tokenizes it as {}; stored log-probs need the teacher's tokenizer \
                 (use kl_source = \"model\" otherwise)",
                t.token.describe(),
                vocab.show(sampled),
                vocab.show(s)
            ));
        }
        // Candidates: the distinct teacher tokens among the alternatives and the sampled token
        // (added when the top-k does not list it), merged by student id: two teacher
        // spellings of one student token add up.
        let mut cand: Vec<(u32, f64)> = Vec::with_capacity(t.top.len() + 1);
        let mut add = |id: u32, l: f64| match cand.iter_mut().find(|(c, _)| *c == id) {
            Some((_, acc)) => *acc = log_add_exp(*acc, l),
            None => cand.push((id, l)),
        };
        for (a, alt) in t.top.iter().enumerate() {
            let id = vocab.lookup(alt).ok_or_else(|| {
                format!("alternative {a} of teacher token {j} ({}) is not in the student's vocabulary", alt.describe())
            })?;
            add(id, alt.logprob);
        }
        if !t.top.iter().any(|alt| same_token(alt, &t.token)) {
            add(sampled, t.token.logprob);
        }
        for (id, l) in cand {
            ids.push(id);
            logprobs.push(l as f32);
        }
        offsets.push(ids.len() as u32);
    }
    Ok(StoredTopK { start: span.start, offsets, ids, logprobs })
}

/// The same teacher token: equal ids when both have one, else equal bytes.
fn same_token(a: &TokenLogprob, b: &TokenLogprob) -> bool {
    match (a.id, b.id) {
        (Some(x), Some(y)) => x == y,
        _ => a.token_bytes().is_some() && a.token_bytes() == b.token_bytes(),
    }
}

fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// The indices of the student tokens that spell `response` inside the encoded row: located
/// by byte offsets in the rendered text, which must contain the response verbatim with token
/// boundaries at both of its ends.
fn response_tokens(encoder: &TextEncoder, prompt: &Conversation, response: &str, enc: &EncodedText) -> Result<Range<usize>, String> {
    let (full, prefix) = encoder.pair_text(prompt, response).map_err(|e| e.to_string())?;
    let start = full[prefix..].find(response).map(|i| prefix + i).ok_or_else(|| {
        "the student's chat template does not contain the teacher response verbatim (it changes it, e.g. trims it), \
         so the teacher's tokens cannot be placed"
            .to_string()
    })?;
    let end = start + response.len();
    let encoding = encoder.tokenizer().encode(full.as_str(), !encoder.has_template()).map_err(|e| e.to_string())?;
    if encoding.get_ids() != enc.ids.as_slice() {
        return Err("internal: the row's ids differ from a fresh encoding of its text".into());
    }
    let offsets = encoding.get_offsets();
    let inside: Vec<usize> = (0..offsets.len()).filter(|&i| offsets[i].1 > offsets[i].0 && offsets[i].0 >= start && offsets[i].1 <= end).collect();
    let (Some(&first), Some(&last)) = (inside.first(), inside.last()) else {
        return Err("no student token lies inside the teacher response".into());
    };
    if let Some(i) = (0..offsets.len()).find(|&i| offsets[i].0 < start && offsets[i].1 > start || offsets[i].0 < end && offsets[i].1 > end) {
        return Err(format!(
            "student token {i} ({:?}) straddles the start or end of the teacher response: the template text and the response merge into one token",
            &full[offsets[i].0..offsets[i].1]
        ));
    }
    if inside.len() != last - first + 1 {
        return Err("the student tokens inside the teacher response are not contiguous".into());
    }
    Ok(first..last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmd_core::GeneratedToken;
    use rmd_model::text::word_level::word_level_encoder;
    use rmd_model::SpecialTokens;

    #[test]
    fn gpt2_byte_table() {
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        assert_eq!(byte_char(0), '\u{100}');
        assert_eq!(byte_char(b'a'), 'a');
        assert_eq!(byte_char(0xE9), 'é');
        assert_eq!(byte_char(0xAD), '\u{143}'); // the soft hyphen is the last remapped byte
        let all: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(all.len(), 256);
    }

    fn gen(text: &str, lp: f64, top: &[(&str, f64)]) -> GeneratedToken {
        GeneratedToken { token: TokenLogprob::text(text, lp), top: top.iter().map(|(t, l)| TokenLogprob::text(*t, *l)).collect() }
    }

    #[test]
    fn word_level_students_look_up_words_without_their_spaces() {
        let enc = word_level_encoder(["what", "is", "it", "good", "fine", "."], true).unwrap();
        let vocab = StudentVocab::new(&enc);
        assert_eq!(vocab.spelling, Spelling::WhitespaceFree);
        let prompt = Conversation::from_user("what is it ?");
        let response = "it is good .";
        let row = enc.encode_pair(&prompt, response).unwrap();
        let lp = TeacherLogprobs::new(vec![
            gen("it", -0.1, &[("it", -0.1)]),
            gen(" is", -0.2, &[(" is", -0.2)]),
            // The sampled token is not among the alternatives: it is added with its own log-prob.
            gen(" good", -1.5, &[(" fine", -0.4)]),
            gen(" .", -0.05, &[(" .", -0.05), (".", -4.0)]),
        ]);
        let s = encode_stored_topk(&enc, &vocab, &prompt, response, &lp, &row).unwrap();
        // "<s><user> what is it ? <assistant> it is good . ": the response starts at index 7.
        assert_eq!(s.start, 7);
        assert_eq!(&row.ids[7..11], &[9, 8, 10, 12]);
        assert_eq!(s.candidates(2), (&[11u32, 10][..], &[-0.4f32, -1.5][..]));
        // " ." and "." are one student token: their probabilities add up.
        let (ids, lps) = s.candidates(3);
        assert_eq!(ids, &[12]);
        assert!((lps[0] as f64 - ((-0.05f64).exp() + (-4.0f64).exp()).ln()).abs() < 1e-6);
        assert_eq!(s.max_id(), 12);
    }

    #[test]
    fn mismatches_name_the_first_differing_token() {
        let enc = word_level_encoder(["what", "is", "it", "good", "fine", "."], true).unwrap();
        let vocab = StudentVocab::new(&enc);
        let prompt = Conversation::from_user("what is it ?");
        let row = enc.encode_pair(&prompt, "it is good .").unwrap();
        let lp = TeacherLogprobs::new(vec![gen("it", -0.1, &[]), gen(" is", -0.2, &[]), gen(" fine", -0.3, &[]), gen(" .", -0.1, &[])]);
        let e = encode_stored_topk(&enc, &vocab, &prompt, "it is good .", &lp, &row).unwrap_err();
        assert!(e.contains("at token 2") && e.contains("\" fine\"") && e.contains("\"good\""), "{e}");
        let short = TeacherLogprobs::new(lp.tokens[..2].to_vec());
        let e = encode_stored_topk(&enc, &vocab, &prompt, "it is good .", &short, &row).unwrap_err();
        assert!(e.contains("has 4 tokens but the teacher generated 2"), "{e}");
        let unknown = TeacherLogprobs::new(vec![gen("it", -0.1, &[("zebra", -3.0)])]);
        let e = encode_stored_topk(&enc, &vocab, &prompt, "it is good .", &unknown, &row).unwrap_err();
        assert!(e.contains("alternative 0 of teacher token 0") && e.contains("zebra"), "{e}");
    }

    /// A byte-level BPE tokenizer (GPT-2 style) with one merged word, built in code.
    fn byte_level_encoder() -> TextEncoder {
        let mut vocab = serde_json::Map::new();
        for b in 0..=255u8 {
            vocab.insert(byte_char(b).to_string(), serde_json::json!(b as u32));
        }
        for (i, t) in ["Ġh", "Ã©", "ĠhÃ©"].iter().enumerate() {
            vocab.insert(t.to_string(), serde_json::json!(256 + i));
        }
        let spec = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": [["Ġ", "h"], ["Ã", "©"], ["Ġh", "Ã©"]]}
        });
        let tok: tokenizers::Tokenizer = spec.to_string().parse().unwrap();
        TextEncoder::new(tok, None, SpecialTokens::default()).unwrap()
    }

    #[test]
    fn byte_level_students_look_up_texts_and_bytes() {
        let enc = byte_level_encoder();
        let vocab = StudentVocab::new(&enc);
        assert_eq!(vocab.spelling, Spelling::ByteLevel);
        let prompt = Conversation::from_user("Q:");
        let response = "ok hé";
        let row = enc.encode_pair(&prompt, response).unwrap();
        // No template: the text is "Q:ok hé"; " hé" is one merged token.
        assert_eq!(row.ids, vec![b'Q' as u32, b':' as u32, b'o' as u32, b'k' as u32, 258]);
        let partial = TokenLogprob { id: None, text: Some("\u{fffd}".into()), bytes: Some(vec![0xC3]), logprob: -3.0 };
        let lp = TeacherLogprobs::new(vec![
            gen("o", -0.5, &[]),
            gen("k", -0.5, &[]),
            GeneratedToken { token: TokenLogprob::text(" hé", -0.25), top: vec![TokenLogprob::text(" hé", -0.25), TokenLogprob::text(" h", -2.0), partial] },
        ]);
        let s = encode_stored_topk(&enc, &vocab, &prompt, response, &lp, &row).unwrap();
        assert_eq!(s.start, 2);
        // " h" -> "Ġh" (256); the lone byte 0xC3 -> "Ã" (id 195).
        assert_eq!(s.candidates(2).0, &[258, 256, 0xC3]);
        // By id, the same.
        let ids = TeacherLogprobs::new(vec![
            GeneratedToken { token: TokenLogprob::id(b'o' as u32, -0.5), top: vec![] },
            GeneratedToken { token: TokenLogprob::id(b'k' as u32, -0.5), top: vec![] },
            GeneratedToken { token: TokenLogprob::id(258, -0.5), top: vec![TokenLogprob::id(258, -0.5), TokenLogprob::id(99_999, -9.0)] },
        ]);
        let e = encode_stored_topk(&enc, &vocab, &prompt, response, &ids, &row).unwrap_err();
        assert!(e.contains("alternative 1 of teacher token 2 (id 99999)"), "{e}");
    }
}
