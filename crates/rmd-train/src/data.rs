//! Training data: pairs tokenized once up front, and the seeded order they are visited in.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rmd_core::PreferencePair;
use rmd_model::{EncodedText, TextEncoder};

use crate::teacher_tokens::{encode_stored_topk, StoredTopK, StudentVocab};
use crate::TrainError;

/// One pair, tokenized: chosen and rejected as reward rows, the teacher response (if any) as
/// an LM row. Teacher scores ride along for the objective.
#[derive(Debug, Clone)]
pub struct EncodedPair {
    pub id: String,
    pub chosen: EncodedText,
    pub rejected: EncodedText,
    pub teacher: Option<EncodedText>,
    /// The teacher's stored top-k log-probs over the tokens of `teacher`, in student ids
    /// (encoded with [`EncodeOptions::stored_kl`]).
    pub stored_topk: Option<StoredTopK>,
    pub chosen_score: Option<f64>,
    pub rejected_score: Option<f64>,
    pub margin: Option<f64>,
}

impl EncodedPair {
    pub fn teacher_gap(&self) -> Option<f64> {
        rmd_core::pair::teacher_gap(self.margin, self.chosen_score, self.rejected_score)
    }
}

#[derive(Debug, Clone, Default)]
pub struct EncodedSet {
    pub pairs: Vec<EncodedPair>,
}

/// What [`EncodedSet::encode_with`] requires of every pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Teacher scores (chosen and rejected scores, or a margin).
    pub need_scores: bool,
    /// A teacher response (the SFT/KL regularizers' LM row).
    pub need_teacher: bool,
    /// The teacher's stored top-k log-probs (`teacher_logprobs`), mapped to the student's
    /// vocabulary and checked token by token against the student's tokenization of the
    /// teacher response (the `kl_source = "stored"` KL target). Implies `need_teacher`.
    pub stored_kl: bool,
}

impl EncodedSet {
    /// Tokenizes `pairs` with the student's chat template. `need_scores` / `need_teacher`
    /// turn a pair that lacks them into an error naming the pair (never a default).
    pub fn encode(
        pairs: &[PreferencePair],
        encoder: &TextEncoder,
        need_scores: bool,
        need_teacher: bool,
    ) -> Result<Self, TrainError> {
        Self::encode_with(pairs, encoder, EncodeOptions { need_scores, need_teacher, stored_kl: false })
    }

    /// [`EncodedSet::encode`] with every option, including the stored teacher top-k.
    pub fn encode_with(pairs: &[PreferencePair], encoder: &TextEncoder, opts: EncodeOptions) -> Result<Self, TrainError> {
        let (need_scores, need_teacher) = (opts.need_scores, opts.need_teacher || opts.stored_kl);
        let vocab = opts.stored_kl.then(|| StudentVocab::new(encoder));
        let mut out = Vec::with_capacity(pairs.len());
        for (row, p) in pairs.iter().enumerate() {
            let data_err = |message: String| TrainError::Data { id: p.id.clone(), row, message };
            if need_scores && p.margin.is_none() && (p.chosen_score.is_none() || p.rejected_score.is_none()) {
                return Err(data_err("the objective needs teacher scores (chosen_score and rejected_score, or margin)".into()));
            }
            for (name, v) in [("chosen_score", p.chosen_score), ("rejected_score", p.rejected_score), ("margin", p.margin)] {
                if let Some(v) = v {
                    if !v.is_finite() {
                        return Err(data_err(format!("{name} is {v}")));
                    }
                }
            }
            let teacher = match (&p.teacher_response, need_teacher) {
                (Some(t), _) => Some(encoder.encode_pair(&p.prompt, t)?),
                (None, true) => return Err(data_err("the SFT/KL regularizer needs a teacher_response".into())),
                (None, false) => None,
            };
            let stored_topk = match (&vocab, &p.teacher_logprobs, &teacher, &p.teacher_response) {
                (None, ..) => None,
                (Some(vocab), Some(lp), Some(enc), Some(response)) => Some(
                    encode_stored_topk(encoder, vocab, &p.prompt, response, lp, enc)
                        .map_err(|m| data_err(format!("stored teacher log-probs: {m}")))?,
                ),
                (Some(_), None, ..) => {
                    return Err(data_err(
                        "kl_source = \"stored\" needs the teacher's top-k log-probs (`teacher_logprobs`, recorded by synthesis with teacher.settings.reference_top_logprobs)".into(),
                    ))
                }
                (Some(_), Some(_), ..) => unreachable!("need_teacher is implied, so the teacher row exists"),
            };
            out.push(EncodedPair {
                id: p.id.clone(),
                chosen: encoder.encode_pair(&p.prompt, &p.chosen)?,
                rejected: encoder.encode_pair(&p.prompt, &p.rejected)?,
                teacher,
                stored_topk,
                chosen_score: p.chosen_score,
                rejected_score: p.rejected_score,
                margin: p.margin,
            });
        }
        Ok(Self { pairs: out })
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Total tokens of the reward rows (for throughput accounting).
    pub fn reward_tokens(&self, idx: &[usize]) -> usize {
        idx.iter().map(|&i| self.pairs[i].chosen.ids.len() + self.pairs[i].rejected.ids.len()).sum()
    }
}

/// The visiting order of epoch `epoch`: a permutation that depends only on (seed, epoch), so a
/// resumed run sees exactly the order the interrupted one would have.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order
}
