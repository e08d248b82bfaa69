//! Grouped-query self-attention with optional q/k/v/o biases (Qwen2, Llama `attention_bias`) and
//! optional per-head q/k RMSNorm (Qwen3). `head_dim` may differ from `hidden / heads`.

use burn::module::Module;
use burn::nn::{Linear, RmsNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use super::lora::{project, LoraAdapter};
use super::rms_norm;
use super::rope::{apply_rotary, RopeTables};

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    /// Qwen3: RMSNorm over `head_dim` of each query head, before RoPE.
    pub q_norm: Option<RmsNorm<B>>,
    pub k_norm: Option<RmsNorm<B>>,
    /// LoRA adapters (see [`super::lora`]); `None` for a plain model.
    pub q_lora: Option<LoraAdapter<B>>,
    pub k_lora: Option<LoraAdapter<B>>,
    pub v_lora: Option<LoraAdapter<B>>,
    pub o_lora: Option<LoraAdapter<B>>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

impl<B: Backend> Attention<B> {
    /// `x`: `[rows, len, hidden]`; `mask`: `[rows, heads, len, len]`, `true` = masked.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: Tensor<B, 4, Bool>,
    ) -> Tensor<B, 3> {
        let [rows, len, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.num_kv_heads, self.head_dim);

        let q = project(&self.q_proj, &self.q_lora, x.clone()).reshape([rows, len, h, d]);
        let k = project(&self.k_proj, &self.k_lora, x.clone()).reshape([rows, len, kvh, d]);
        let v = project(&self.v_proj, &self.v_lora, x).reshape([rows, len, kvh, d]);
        let q = match &self.q_norm {
            Some(n) => rms_norm(n, q),
            None => q,
        };
        let k = match &self.k_norm {
            Some(n) => rms_norm(n, k),
            None => k,
        };
        let q = apply_rotary(q.swap_dims(1, 2), rope);
        let k = apply_rotary(k.swap_dims(1, 2), rope);
        let v = v.swap_dims(1, 2);

        // Grouped-query attention: k, v keep their kv heads (rmd_kernels shares them).
        let out = rmd_kernels::attention(q, k, v, mask, 1.0 / (d as f64).sqrt()); // [rows, heads, len, d]
        project(
            &self.o_proj,
            &self.o_lora,
            out.swap_dims(1, 2).reshape([rows, len, h * d]),
        )
    }
}
