//! LoRA adapters on the attention and MLP projections, for users whose GPU cannot hold a full
//! fine-tune: the base weights are frozen and each adapted projection learns a low-rank update
//! `W x + (alpha / r) * B A x` (A: `[in, r]`, Kaiming-uniform; B: `[r, out]`, zeros, so training
//! starts exactly at the base model). `merge_lora` folds the update into the base weights for
//! export, giving a plain checkpoint any HF loader reads.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::RewardModel;

/// Which projections get adapters, and their shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    /// Projection names (`q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`, `up_proj`, `down_proj`).
    pub targets: Vec<String>,
    pub seed: u64,
}

pub const ALL_PROJECTIONS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 16,
            alpha: 32.0,
            targets: ALL_PROJECTIONS.iter().map(|s| s.to_string()).collect(),
            seed: 0,
        }
    }
}

impl LoraConfig {
    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 || !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(ModelError::InvalidConfig(format!(
                "lora needs rank >= 1 and alpha > 0, got rank {}, alpha {}",
                self.rank, self.alpha
            )));
        }
        if self.targets.is_empty() {
            return Err(ModelError::InvalidConfig("lora.targets is empty".into()));
        }
        if let Some(t) = self
            .targets
            .iter()
            .find(|t| !ALL_PROJECTIONS.contains(&t.as_str()))
        {
            return Err(ModelError::InvalidConfig(format!(
                "unknown lora target `{t}` (expected one of {ALL_PROJECTIONS:?})"
            )));
        }
        Ok(())
    }

    fn targets(&self, name: &str) -> bool {
        self.targets.iter().any(|t| t == name)
    }
}

#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    pub a: Param<Tensor<B, 2>>,
    pub b: Param<Tensor<B, 2>>,
    pub scale: f64,
}

impl<B: Backend> LoraAdapter<B> {
    pub fn new(d_in: usize, d_out: usize, rank: usize, alpha: f64, device: &B::Device) -> Self {
        // PEFT's default: A ~ Kaiming-uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); B = 0.
        let bound = 1.0 / (d_in as f64).sqrt();
        Self {
            a: Param::from_tensor(Tensor::random(
                [d_in, rank],
                Distribution::Uniform(-bound, bound),
                device,
            )),
            b: Param::from_tensor(Tensor::zeros([rank, d_out], device)),
            scale: alpha / rank as f64,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        x.matmul(self.a.val().unsqueeze())
            .matmul(self.b.val().unsqueeze())
            .mul_scalar(self.scale)
    }

    /// `scale * A B`, the update in burn's `[in, out]` weight layout.
    pub fn delta(&self) -> Tensor<B, 2> {
        self.a.val().matmul(self.b.val()).mul_scalar(self.scale)
    }
}

/// `linear(x)` plus the adapter's update when there is one.
pub fn project<B: Backend, const D: usize>(
    linear: &Linear<B>,
    lora: &Option<LoraAdapter<B>>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    match lora {
        None => dense(linear, x),
        Some(l) => dense(linear, x.clone()) + l.forward(x),
    }
}

/// A `Linear` through rmd-kernels (burn's op, or cuBLAS on the CUDA backend).
fn dense<B: Backend, const D: usize>(linear: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    rmd_kernels::linear(x, linear.weight.val(), linear.bias.as_ref().map(|b| b.val()))
}

fn adapter<B: Backend>(
    cfg: &LoraConfig,
    name: &str,
    linear: &Linear<B>,
    device: &B::Device,
) -> Option<LoraAdapter<B>> {
    let [d_in, d_out] = linear.weight.dims();
    cfg.targets(name)
        .then(|| LoraAdapter::new(d_in, d_out, cfg.rank, cfg.alpha, device))
}

impl<B: Backend> RewardModel<B> {
    /// Freezes the backbone and LM head and attaches fresh adapters to the configured
    /// projections. The value head stays trainable (it is new for a reward model).
    pub fn with_lora(mut self, cfg: &LoraConfig, device: &B::Device) -> Result<Self> {
        cfg.validate()?;
        if self.has_lora() {
            return Err(ModelError::Usage(
                "this model already has LoRA adapters".into(),
            ));
        }
        B::seed(device, cfg.seed);
        self.backbone = self.backbone.no_grad();
        self.lm_head = self.lm_head.no_grad();
        for layer in &mut self.backbone.layers {
            let a = &mut layer.self_attn;
            a.q_lora = adapter(cfg, "q_proj", &a.q_proj, device);
            a.k_lora = adapter(cfg, "k_proj", &a.k_proj, device);
            a.v_lora = adapter(cfg, "v_proj", &a.v_proj, device);
            a.o_lora = adapter(cfg, "o_proj", &a.o_proj, device);
            let m = &mut layer.mlp;
            m.gate_lora = adapter(cfg, "gate_proj", &m.gate_proj, device);
            m.up_lora = adapter(cfg, "up_proj", &m.up_proj, device);
            m.down_lora = adapter(cfg, "down_proj", &m.down_proj, device);
        }
        Ok(self)
    }

    pub fn has_lora(&self) -> bool {
        self.backbone.layers.iter().any(|l| {
            let (a, m) = (&l.self_attn, &l.mlp);
            [
                &a.q_lora,
                &a.k_lora,
                &a.v_lora,
                &a.o_lora,
                &m.gate_lora,
                &m.up_lora,
                &m.down_lora,
            ]
            .iter()
            .any(|x| x.is_some())
        })
    }

    /// Folds every adapter into its base weight (`W + scale * A B`) and removes the adapters.
    pub fn merge_lora(mut self) -> Self {
        fn fold<B: Backend>(linear: &mut Linear<B>, lora: &mut Option<LoraAdapter<B>>) {
            if let Some(l) = lora.take() {
                let merged = linear.weight.val() + l.delta();
                linear.weight = Param::from_tensor(merged);
            }
        }
        for layer in &mut self.backbone.layers {
            let a = &mut layer.self_attn;
            fold(&mut a.q_proj, &mut a.q_lora);
            fold(&mut a.k_proj, &mut a.k_lora);
            fold(&mut a.v_proj, &mut a.v_lora);
            fold(&mut a.o_proj, &mut a.o_lora);
            let m = &mut layer.mlp;
            fold(&mut m.gate_proj, &mut m.gate_lora);
            fold(&mut m.up_proj, &mut m.up_lora);
            fold(&mut m.down_proj, &mut m.down_lora);
        }
        self
    }
}
