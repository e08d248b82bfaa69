//! Training configuration (TOML/JSON via serde). Defaults follow the method's reference
//! training setup (method.md §4), with the optimizer's PyTorch defaults written out.

use burn::tensor::backend::Backend;
use rmd_loss::{
    BradleyTerry, BradleyTerryMargin, LogExp, MarginForm, MarginRegression, MarginSource, PointwiseRegression,
    RewardCentering, RewardObjective, SoftLabelBt, WeightedSum,
};
use rmd_model::PaddingSide;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The pairwise reward objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ObjectiveConfig {
    Bt,
    BtMargin {
        #[serde(default = "one")]
        scale: f64,
    },
    /// The method's margin-aware regression; `reference_broadcast` reproduces the reference
    /// code's broadcasting bug and exists only for reproduction.
    MarginMse {
        #[serde(default)]
        reference_broadcast: bool,
    },
    Pointwise,
    SoftBt {
        #[serde(default = "one")]
        scale: f64,
    },
    LogExp,
}

fn one() -> f64 {
    1.0
}

impl ObjectiveConfig {
    pub fn name(&self) -> &'static str {
        match self {
            ObjectiveConfig::Bt => "bt",
            ObjectiveConfig::BtMargin { .. } => "bt_margin",
            ObjectiveConfig::MarginMse { .. } => "margin_mse",
            ObjectiveConfig::Pointwise => "pointwise",
            ObjectiveConfig::SoftBt { .. } => "soft_bt",
            ObjectiveConfig::LogExp => "log_exp",
        }
    }

    /// Whether the objective reads teacher scores (so every training pair must carry them).
    pub fn needs_scores(&self) -> bool {
        !matches!(self, ObjectiveConfig::Bt | ObjectiveConfig::LogExp)
    }

    pub fn build<B: Backend>(&self, margin_source: MarginSource, centering: f64) -> Result<Box<dyn RewardObjective<B>>, TrainError> {
        let base: Box<dyn RewardObjective<B>> = match *self {
            ObjectiveConfig::Bt => Box::new(BradleyTerry),
            ObjectiveConfig::BtMargin { scale } => Box::new(BradleyTerryMargin { source: margin_source, scale }),
            ObjectiveConfig::MarginMse { reference_broadcast } => Box::new(MarginRegression {
                source: margin_source,
                form: if reference_broadcast { MarginForm::ReferenceBroadcast } else { MarginForm::PerPair },
            }),
            ObjectiveConfig::Pointwise => Box::new(PointwiseRegression),
            ObjectiveConfig::SoftBt { scale } => Box::new(SoftLabelBt { source: margin_source, scale }),
            ObjectiveConfig::LogExp => Box::new(LogExp),
        };
        if centering == 0.0 {
            return Ok(base);
        }
        let c = RewardCentering::new(centering)?;
        Ok(Box::new(WeightedSum::new().term(1.0, base)?.term(1.0, c)?))
    }
}

/// `total = reward * L_reward + sft * L_sft + kl * L_kl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    pub reward: f64,
    pub sft: f64,
    pub kl: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self { reward: 1.0, sft: 0.0, kl: 0.0 }
    }
}

/// AdamW with PyTorch's defaults written out (burn's own defaults differ: eps 1e-5, wd 1e-4).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    pub lr: f64,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Fraction of all optimizer steps spent in linear warmup.
    pub warmup_ratio: f64,
    /// Cosine decays from `lr` to `lr * min_lr_ratio`.
    pub min_lr_ratio: f64,
    /// Global-norm gradient clipping; `None` disables it.
    pub max_grad_norm: Option<f64>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self { lr: 1e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, warmup_ratio: 0.03, min_lr_ratio: 0.0, max_grad_norm: Some(1.0) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub objective: ObjectiveConfig,
    pub margin_source: MarginSourceConfig,
    /// Reward-centering coefficient (0 disables it).
    pub centering: f64,
    pub weights: LossWeights,
    pub kl_temperature: f64,
    /// Where the KL regularizer's teacher distribution comes from (when `weights.kl > 0`).
    /// Omitted from serialized configs when `model`, so runs started before it existed resume.
    #[serde(skip_serializing_if = "KlSource::is_model")]
    pub kl_source: KlSource,
    pub optimizer: OptimizerConfig,
    pub pairs_per_micro_batch: usize,
    pub accumulation_steps: usize,
    pub epochs: usize,
    /// Stop after this many optimizer steps (the schedule still spans `epochs`).
    pub max_steps: Option<usize>,
    pub seed: u64,
    pub max_length: usize,
    pub padding_side: PaddingSide,
    /// Positions per LM-head chunk in the generative losses.
    pub lm_chunk: usize,
    pub eval_every: Option<usize>,
    pub checkpoint_every: Option<usize>,
    /// Checkpoints kept on disk (oldest deleted first); at least 1.
    pub keep_checkpoints: usize,
    pub progress_bar: bool,
    /// Train LoRA adapters on the attention/MLP projections instead of the full backbone
    /// (the value head always trains). `None`: full fine-tune.
    pub lora: Option<rmd_model::LoraConfig>,
    /// Compute dtype of the forward/backward; master weights keep the model's own dtype.
    pub precision: crate::Precision,
    /// Data-parallel replicas (devices): every micro-batch is split across them and their
    /// gradients are summed with burn's collective, so the trajectory is the single-device one
    /// (up to float summation order). Not part of the resume check: a run may resume on
    /// another device count. Omitted from serialized configs when 1.
    #[serde(skip_serializing_if = "is_one")]
    pub devices: usize,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The teacher distribution of the token-level KL regularizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlSource {
    /// A frozen local teacher model with the student's vocabulary (the `teacher` argument of
    /// `Trainer::new`), run on the teacher response at every step.
    #[default]
    Model,
    /// The top-k log-probs synthesis stored with each pair (`teacher_logprobs`), encoded with
    /// [`crate::EncodeOptions::stored_kl`]. The SFT and KL targets are then the teacher's own
    /// tokens (template tokens after the response, such as an end-of-turn marker, are not
    /// scored), and the distribution is renormalized over the stored candidates.
    Stored,
}

impl KlSource {
    pub fn is_model(&self) -> bool {
        *self == KlSource::Model
    }
}

/// `MarginSource` as it appears in config files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginSourceConfig {
    #[default]
    Auto,
    Scores,
    Column,
}

impl From<MarginSourceConfig> for MarginSource {
    fn from(m: MarginSourceConfig) -> Self {
        match m {
            MarginSourceConfig::Auto => MarginSource::Auto,
            MarginSourceConfig::Scores => MarginSource::Scores,
            MarginSourceConfig::Column => MarginSource::Column,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            objective: ObjectiveConfig::MarginMse { reference_broadcast: false },
            margin_source: MarginSourceConfig::Auto,
            centering: 0.0,
            weights: LossWeights::default(),
            kl_temperature: 1.0,
            kl_source: KlSource::Model,
            optimizer: OptimizerConfig::default(),
            pairs_per_micro_batch: 8,
            accumulation_steps: 2,
            epochs: 1,
            max_steps: None,
            seed: 0,
            max_length: 1024,
            padding_side: PaddingSide::Right,
            lm_chunk: 1024,
            eval_every: None,
            checkpoint_every: None,
            keep_checkpoints: 2,
            progress_bar: true,
            lora: None,
            precision: crate::Precision::F32,
            devices: 1,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.pairs_per_micro_batch == 0 || self.accumulation_steps == 0 || self.epochs == 0 {
            return bad("pairs_per_micro_batch, accumulation_steps and epochs must be >= 1".into());
        }
        let w = self.weights;
        for (n, v) in [("weights.reward", w.reward), ("weights.sft", w.sft), ("weights.kl", w.kl)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{n} = {v} must be finite and >= 0"));
            }
        }
        if w.reward + w.sft + w.kl == 0.0 {
            return bad("all loss weights are zero: nothing to train".into());
        }
        if !(self.optimizer.lr.is_finite() && self.optimizer.lr > 0.0) {
            return bad(format!("optimizer.lr = {} must be > 0", self.optimizer.lr));
        }
        if !(0.0..1.0).contains(&self.optimizer.warmup_ratio) {
            return bad(format!("optimizer.warmup_ratio = {} must be in [0, 1)", self.optimizer.warmup_ratio));
        }
        if !(0.0..=1.0).contains(&self.optimizer.min_lr_ratio) {
            return bad(format!("optimizer.min_lr_ratio = {} must be in [0, 1]", self.optimizer.min_lr_ratio));
        }
        if let Some(n) = self.optimizer.max_grad_norm {
            if !(n.is_finite() && n > 0.0) {
                return bad(format!("optimizer.max_grad_norm = {n} must be > 0"));
            }
        }
        if self.max_length < 2 || self.lm_chunk == 0 || self.keep_checkpoints == 0 {
            return bad("max_length must be >= 2, lm_chunk and keep_checkpoints >= 1".into());
        }
        if !(self.kl_temperature.is_finite() && self.kl_temperature > 0.0) {
            return bad(format!("kl_temperature = {} must be > 0", self.kl_temperature));
        }
        if self.devices == 0 {
            return bad("devices must be >= 1".into());
        }
        if self.devices > 1 && matches!(self.objective, ObjectiveConfig::MarginMse { reference_broadcast: true }) {
            // Its loss couples every pair of a micro-batch with every other, so it changes when
            // a micro-batch is split; the gradient would no longer be the single-device one.
            return bad("objective margin_mse with reference_broadcast = true cannot be split across devices; use devices = 1".into());
        }
        Ok(())
    }

    /// The fields that determine the training trajectory, for the resume check (display
    /// settings such as the progress bar may change between a run and its resumption).
    pub fn trajectory_json(&self) -> String {
        let mut c = self.clone();
        c.progress_bar = true;
        c.devices = 1;
        serde_json::to_string(&c).expect("config serializes")
    }

    /// Pairs per optimizer step.
    pub fn pairs_per_step(&self) -> usize {
        self.pairs_per_micro_batch * self.accumulation_steps
    }
}
