//! The building blocks shared by every family.

pub mod attention;
pub mod decoder_layer;
pub mod lora;
pub mod mask;
pub mod mlp;
pub mod rope;

pub use attention::Attention;
pub use decoder_layer::DecoderLayer;
pub use lora::{LoraAdapter, LoraConfig};
pub use mask::{attention_masks, AttentionMasks};
pub use mlp::Mlp;
pub use rope::{RopeTables, RotaryEmbedding};

use burn::nn::RmsNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `norm` applied through rmd-kernels (one autodiff node on CUDA; statistics in f32, as HF).
pub(crate) fn rms_norm<B: Backend, const D: usize>(norm: &RmsNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    rmd_kernels::rms_norm(x, norm.gamma.val(), norm.epsilon)
}
