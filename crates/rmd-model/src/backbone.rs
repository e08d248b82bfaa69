//! The decoder stack shared by every family: embeddings, blocks, final norm.

use burn::module::Module;
use burn::nn::{Embedding, RmsNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use crate::config::DecoderConfig;
use crate::error::Result;
use crate::layers::{attention_masks, Attention, DecoderLayer, Mlp, RotaryEmbedding};
use crate::weights::{Builder, ParamInit};

#[derive(Module, Debug)]
pub struct Backbone<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    pub rope: RotaryEmbedding,
    pub num_heads: usize,
    pub sliding_window: Option<usize>,
}

impl<B: Backend> Backbone<B> {
    /// Builds the stack from HF names (`model.embed_tokens.weight`, `model.layers.{i}.…`, `model.norm.weight`).
    pub fn build(c: &DecoderConfig, b: &mut Builder<'_, B>) -> Result<Self> {
        let normal = ParamInit::Normal {
            std: c.initializer_range,
        };
        let (h, hd) = (c.hidden_size, c.head_dim());
        let (nh, nkv) = (c.num_attention_heads, c.num_key_value_heads);
        let embed_tokens = b.embedding("model.embed_tokens.weight", c.vocab_size, h, normal)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let a = format!("{p}.self_attn");
            let self_attn = Attention {
                q_proj: b.linear(
                    &format!("{a}.q_proj"),
                    h,
                    nh * hd,
                    c.qkv_bias,
                    normal,
                    ParamInit::Zeros,
                )?,
                k_proj: b.linear(
                    &format!("{a}.k_proj"),
                    h,
                    nkv * hd,
                    c.qkv_bias,
                    normal,
                    ParamInit::Zeros,
                )?,
                v_proj: b.linear(
                    &format!("{a}.v_proj"),
                    h,
                    nkv * hd,
                    c.qkv_bias,
                    normal,
                    ParamInit::Zeros,
                )?,
                o_proj: b.linear(
                    &format!("{a}.o_proj"),
                    nh * hd,
                    h,
                    c.o_bias,
                    normal,
                    ParamInit::Zeros,
                )?,
                q_norm: if c.qk_norm {
                    Some(b.rms_norm(&format!("{a}.q_norm.weight"), hd, c.rms_norm_eps)?)
                } else {
                    None
                },
                k_norm: if c.qk_norm {
                    Some(b.rms_norm(&format!("{a}.k_norm.weight"), hd, c.rms_norm_eps)?)
                } else {
                    None
                },
                q_lora: None,
                k_lora: None,
                v_lora: None,
                o_lora: None,
                num_heads: nh,
                num_kv_heads: nkv,
                head_dim: hd,
            };
            let m = format!("{p}.mlp");
            let mlp = Mlp {
                gate_proj: b.linear(
                    &format!("{m}.gate_proj"),
                    h,
                    c.intermediate_size,
                    c.mlp_bias,
                    normal,
                    ParamInit::Zeros,
                )?,
                up_proj: b.linear(
                    &format!("{m}.up_proj"),
                    h,
                    c.intermediate_size,
                    c.mlp_bias,
                    normal,
                    ParamInit::Zeros,
                )?,
                down_proj: b.linear(
                    &format!("{m}.down_proj"),
                    c.intermediate_size,
                    h,
                    c.mlp_bias,
                    normal,
                    ParamInit::Zeros,
                )?,
                gate_lora: None,
                up_lora: None,
                down_lora: None,
            };
            layers.push(DecoderLayer {
                input_layernorm: b.rms_norm(
                    &format!("{p}.input_layernorm.weight"),
                    h,
                    c.rms_norm_eps,
                )?,
                self_attn,
                post_attention_layernorm: b.rms_norm(
                    &format!("{p}.post_attention_layernorm.weight"),
                    h,
                    c.rms_norm_eps,
                )?,
                mlp,
                sliding: c.is_sliding_layer(i),
            });
        }
        let norm = b.rms_norm("model.norm.weight", h, c.rms_norm_eps)?;
        Ok(Self {
            embed_tokens,
            layers,
            norm,
            rope: RotaryEmbedding::new(c),
            num_heads: nh,
            sliding_window: c.full_attention_limit(),
        })
    }

    /// Final normed hidden states `[rows, len, hidden]`.
    ///
    /// `valid` marks real tokens (`[rows, len]`), `positions` are RoPE positions (`[rows, len]`).
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        valid: &Tensor<B, 2, Bool>,
        positions: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let rope = self.rope.tables(positions);
        let masks = attention_masks(valid, self.num_heads, self.sliding_window);
        let mut x = rmd_kernels::embedding(self.embed_tokens.weight.val(), input_ids);
        for layer in &self.layers {
            x = layer.forward(x, &rope, &masks);
        }
        crate::layers::rms_norm(&self.norm, x)
    }
}
