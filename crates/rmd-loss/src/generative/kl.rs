//! Token-level distillation: `T^2 * KL(softmax(z_T / T) || softmax(z_S / T))` per target
//! position, with the SFT weighting (per-sequence mean, then mean over sequences).

use std::ops::Range;

use burn::tensor::{activation::log_softmax, backend::Backend, DType, IndexingUpdateOp, Int, Tensor};

use super::chunked::{accumulation_dtype, chunk_weights, chunked_loss, ChunkConfig, LmInput};
use super::targets::TokenTargets;
use crate::LossError;

/// The teacher's next-token distribution at the scored positions.
#[derive(Debug, Clone)]
pub enum TeacherDistribution<B: Backend> {
    /// Dense teacher logits for the *scored positions only*, `[positions, vocab]`, in the
    /// order of `TokenTargets::positions` (e.g. from a frozen local teacher model).
    Logits(Tensor<B, 2>),
    /// A frozen teacher's final hidden states at the scored positions `[positions, hidden_T]`
    /// and its LM head `[vocab, hidden_T]`: teacher logits are built one chunk at a time too.
    Hidden { hidden: Tensor<B, 2>, head_weight: Tensor<B, 2> },
    /// Top-k teacher log-probs recorded at synthesis time: token ids `[positions, k]` and
    /// log-probs `[positions, k]`. The distribution is renormalized over the k tokens (the
    /// mass outside the top-k is unknown and treated as zero).
    TopK { ids: Tensor<B, 2, Int>, logprobs: Tensor<B, 2> },
}

impl<B: Backend> TeacherDistribution<B> {
    fn check(&self, positions: usize, vocab: usize) -> Result<(), LossError> {
        let (what, dims, expected_last) = match self {
            TeacherDistribution::Logits(t) => ("teacher logits", t.dims(), vocab),
            TeacherDistribution::Hidden { hidden, head_weight } => {
                if head_weight.dims()[0] != vocab || head_weight.dims()[1] != hidden.dims()[1] {
                    return Err(LossError::Shape { what: "teacher LM head [vocab, hidden]", expected: vec![vocab, hidden.dims()[1]], got: head_weight.dims().to_vec() });
                }
                ("teacher hidden states", hidden.dims(), hidden.dims()[1])
            }
            TeacherDistribution::TopK { ids, logprobs } => {
                if ids.dims() != logprobs.dims() {
                    return Err(LossError::Shape { what: "teacher top-k ids vs log-probs", expected: logprobs.dims().to_vec(), got: ids.dims().to_vec() });
                }
                ("teacher top-k log-probs", logprobs.dims(), logprobs.dims()[1])
            }
        };
        if dims[0] != positions || dims[1] != expected_last {
            return Err(LossError::Shape { what, expected: vec![positions, expected_last], got: dims.to_vec() });
        }
        Ok(())
    }

    /// The teacher probabilities at temperature `t` for the chunk, as a dense f32 `[c, V]`.
    fn probs(&self, r: Range<usize>, t: f64, vocab: usize, dtype: DType) -> Tensor<B, 2> {
        let acc = accumulation_dtype(dtype);
        match self {
            TeacherDistribution::Logits(z) => {
                log_softmax(z.clone().detach().slice([r]).cast(acc).div_scalar(t), 1).exp()
            }
            TeacherDistribution::Hidden { hidden, head_weight } => {
                let z = rmd_kernels::matmul(hidden.clone().detach().slice([r]), head_weight.clone().detach().transpose());
                log_softmax(z.cast(acc).div_scalar(t), 1).exp()
            }
            TeacherDistribution::TopK { ids, logprobs } => {
                let ids = ids.clone().slice([r.clone()]);
                let p = log_softmax(logprobs.clone().detach().slice([r.clone()]).cast(acc).div_scalar(t), 1).exp();
                let device = p.device();
                Tensor::<B, 2>::zeros([r.len(), vocab], (&device, DType::from(acc))).scatter(1, ids, p, IndexingUpdateOp::Add)
            }
        }
    }
}

/// `sum_pos w_pos * T^2 * KL(p_T || q_S)` as an f32 `[1]` tensor.
pub fn kl_loss<B: Backend>(
    input: &LmInput<B>,
    teacher: &TeacherDistribution<B>,
    targets: &TokenTargets,
    temperature: f64,
    config: ChunkConfig,
) -> Result<Tensor<B, 1>, LossError> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(LossError::InvalidParameter { name: "temperature", value: temperature, why: "must be finite and > 0" });
    }
    let vocab = input.vocab();
    teacher.check(targets.num_positions(), vocab)?;
    let t = temperature;
    chunked_loss(input, targets, config, |logits, r| {
        let device = logits.device();
        let w = chunk_weights::<B>(targets, r.clone(), &device, logits.dtype());
        let p = teacher.probs(r, t, vocab, logits.dtype());
        let log_q = log_softmax(logits.div_scalar(t), 1);
        // p log p with 0 log 0 = 0: clamp only inside the log, the factor p zeroes it.
        let log_p = p.clone().clamp_min(1e-30).log();
        let kl = (p.clone() * (log_p - log_q.clone())).sum_dim(1); // [c, 1]
        let value = (kl * w.clone()).sum().mul_scalar(t * t);
        // d/dz_S of T^2 KL = T (q - p) (p sums to 1 per row).
        let grad = (log_q.exp() - p) * w.mul_scalar(t);
        Ok((value, grad))
    })
}

