//! One pre-norm decoder block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.

use burn::module::Module;
use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::attention::Attention;
use super::rms_norm;
use super::mask::AttentionMasks;
use super::mlp::Mlp;
use super::rope::RopeTables;

#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub input_layernorm: RmsNorm<B>,
    pub self_attn: Attention<B>,
    pub post_attention_layernorm: RmsNorm<B>,
    pub mlp: Mlp<B>,
    /// Uses the sliding-window mask.
    pub sliding: bool,
}

impl<B: Backend> DecoderLayer<B> {
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        masks: &AttentionMasks<B>,
    ) -> Tensor<B, 3> {
        let mask = match (&masks.sliding, self.sliding) {
            (Some(m), true) => m.clone(),
            _ => masks.full.clone(),
        };
        let h = x.clone()
            + self
                .self_attn
                .forward(rms_norm(&self.input_layernorm, x), rope, mask);
        h.clone() + self.mlp.forward(rms_norm(&self.post_attention_layernorm, h))
    }
}
