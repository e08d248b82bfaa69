//! The chunk loop shared by SFT and KL: logits for a bounded slab of positions at a time,
//! in f32, and the gradient surrogate described in the module docs.

use std::ops::Range;

use burn::tensor::{backend::Backend, DType, FloatDType, IndexingUpdateOp, Int, Tensor, TensorData};

use rmd_kernels::matmul;

use super::targets::TokenTargets;
use crate::LossError;

/// How many positions to turn into logits at once. The transient f32 slab is
/// `positions_per_chunk * vocab * 4` bytes (e.g. 1024 x 152k = 623 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    pub positions_per_chunk: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self { positions_per_chunk: 1024 }
    }
}

/// What the student's LM head sees.
#[derive(Debug, Clone)]
pub enum LmInput<B: Backend> {
    /// Final normed hidden states `[rows, len, hidden]` and the LM head weight `[vocab, hidden]`
    /// (for tied embeddings, the embedding matrix). The memory-bounded path.
    Hidden { hidden: Tensor<B, 3>, head_weight: Tensor<B, 2> },
    /// Precomputed logits `[rows, len, vocab]` in any float dtype. The f32 work is still
    /// chunked; the gradient buffer has the logits' own size and dtype.
    Logits(Tensor<B, 3>),
}

impl<B: Backend> LmInput<B> {
    pub(crate) fn grid(&self) -> [usize; 2] {
        match self {
            LmInput::Hidden { hidden, .. } => [hidden.dims()[0], hidden.dims()[1]],
            LmInput::Logits(l) => [l.dims()[0], l.dims()[1]],
        }
    }

    pub(crate) fn vocab(&self) -> usize {
        match self {
            LmInput::Hidden { head_weight, .. } => head_weight.dims()[0],
            LmInput::Logits(l) => l.dims()[2],
        }
    }

    pub(crate) fn device(&self) -> B::Device {
        match self {
            LmInput::Hidden { hidden, .. } => hidden.device(),
            LmInput::Logits(l) => l.device(),
        }
    }

    pub(crate) fn check(&self, targets: &TokenTargets) -> Result<(), LossError> {
        let [rows, len] = self.grid();
        if rows != targets.rows || len != targets.len {
            return Err(LossError::Shape {
                what: "LM input [rows, len]",
                expected: vec![targets.rows, targets.len],
                got: vec![rows, len],
            });
        }
        if let LmInput::Hidden { hidden, head_weight } = self {
            if hidden.dims()[2] != head_weight.dims()[1] {
                return Err(LossError::Shape {
                    what: "LM head weight [vocab, hidden]",
                    expected: vec![head_weight.dims()[0], hidden.dims()[2]],
                    got: head_weight.dims().to_vec(),
                });
            }
        }
        targets.check_vocab(self.vocab())
    }
}

/// Per chunk, the caller's `eval` receives the chunk's f32 logits `[c, V]` (detached) and
/// the chunk's position range into `targets`; it returns the chunk's contribution to the
/// loss (`[1]`) and `dL/dlogits` (`[c, V]`, f32, already weighted).
pub(crate) fn chunked_loss<B, F>(
    input: &LmInput<B>,
    targets: &TokenTargets,
    config: ChunkConfig,
    mut eval: F,
) -> Result<Tensor<B, 1>, LossError>
where
    B: Backend,
    F: FnMut(Tensor<B, 2>, Range<usize>) -> Result<(Tensor<B, 1>, Tensor<B, 2>), LossError>,
{
    if config.positions_per_chunk == 0 {
        return Err(LossError::InvalidParameter { name: "positions_per_chunk", value: 0.0, why: "must be >= 1" });
    }
    input.check(targets)?;
    let device = input.device();
    let p = targets.num_positions();
    let [rows, len] = input.grid();
    let pos_idx = |r: Range<usize>| {
        let v: Vec<i64> = targets.positions[r.clone()].iter().map(|&x| x as i64).collect();
        Tensor::<B, 1, Int>::from_data(TensorData::new(v, [r.len()]), &device)
    };
    let chunks: Vec<Range<usize>> = (0..p)
        .step_by(config.positions_per_chunk)
        .map(|s| s..(s + config.positions_per_chunk).min(p))
        .collect();

    let mut value: Option<Tensor<B, 1>> = None;
    let mut add_value = |v: Tensor<B, 1>| {
        value = Some(match value.take() {
            None => v,
            Some(acc) => acc + v,
        })
    };

    let surrogate = match input {
        LmInput::Hidden { hidden, head_weight } => {
            let h = hidden.dims()[2];
            let flat = hidden.clone().reshape([rows * len, h]);
            let selected = flat.select(0, pos_idx(0..p)); // [P, H], in the graph
            let w = head_weight.clone().detach();
            let dtype = w.dtype();
            let acc = accumulation_dtype(dtype);
            let mut grad_h = Vec::with_capacity(chunks.len());
            let mut grad_w: Option<Tensor<B, 2>> = None;
            for r in &chunks {
                let hc = selected.clone().detach().slice([r.clone()]);
                let logits = matmul(hc.clone(), w.clone().transpose()).cast(acc);
                let (v, g) = eval(logits, r.clone())?;
                add_value(v);
                let g = g.cast(dtype);
                grad_h.push(matmul(g.clone(), w.clone()));
                let gw = matmul(g.transpose(), hc).cast(acc);
                grad_w = Some(match grad_w {
                    None => gw,
                    Some(acc) => acc + gw,
                });
            }
            let grad_h = Tensor::cat(grad_h, 0).detach();
            let grad_w = grad_w.expect("at least one chunk").cast(dtype).detach();
            (selected * grad_h).sum() + (head_weight.clone() * grad_w).sum()
        }
        LmInput::Logits(logits) => {
            let v = logits.dims()[2];
            let flat = logits.clone().reshape([rows * len, v]);
            let dtype = flat.dtype();
            let detached = flat.clone().detach();
            let mut grad = Tensor::<B, 2>::zeros([rows * len, v], (&device, dtype));
            for r in &chunks {
                let idx = pos_idx(r.clone());
                let zc = detached.clone().select(0, idx.clone()).cast(accumulation_dtype(dtype));
                let (val, g) = eval(zc, r.clone())?;
                add_value(val);
                grad = grad.select_assign(0, idx, g.cast(dtype), IndexingUpdateOp::Add);
            }
            (flat * grad.detach()).sum()
        }
    };
    let value = value.expect("at least one chunk").detach();
    let surrogate = surrogate.cast(value.dtype());
    Ok(value + surrogate.clone() - surrogate.detach())
}

/// The dtype the loss is accumulated in: f32, or f64 when the inputs already are f64.
pub(crate) fn accumulation_dtype(dtype: DType) -> FloatDType {
    if dtype == DType::F64 { FloatDType::F64 } else { FloatDType::F32 }
}

/// The chunk's position weights as a column `[c, 1]` in `dtype`.
pub(crate) fn chunk_weights<B: Backend>(targets: &TokenTargets, r: Range<usize>, device: &B::Device, dtype: DType) -> Tensor<B, 2> {
    let w = targets.weights[r.clone()].to_vec();
    Tensor::<B, 1>::from_data(TensorData::new(w, [r.len()]), device).cast(accumulation_dtype(dtype)).reshape([r.len(), 1])
}

/// `[c, 1]` target ids of the chunk.
pub(crate) fn chunk_ids<B: Backend>(targets: &TokenTargets, r: Range<usize>, device: &B::Device) -> Tensor<B, 2, Int> {
    let ids = targets.target_ids[r.clone()].to_vec();
    Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [r.len()]), device).reshape([r.len(), 1])
}
