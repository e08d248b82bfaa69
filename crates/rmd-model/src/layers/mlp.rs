//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::lora::{project, LoraAdapter};

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
    /// LoRA adapters (see [`super::lora`]); `None` for a plain model.
    pub gate_lora: Option<LoraAdapter<B>>,
    pub up_lora: Option<LoraAdapter<B>>,
    pub down_lora: Option<LoraAdapter<B>>,
}

impl<B: Backend> Mlp<B> {
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = project(&self.gate_proj, &self.gate_lora, x.clone());
        let up = project(&self.up_proj, &self.up_lora, x);
        project(&self.down_proj, &self.down_lora, rmd_kernels::swiglu(gate, up))
    }
}
