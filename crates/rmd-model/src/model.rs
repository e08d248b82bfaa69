//! The reward model: decoder backbone + value head + (optional) LM head, and its forward API.
//!
//! One forward serves a mixed batch: reward rows get a scalar (the value head at their last real
//! token), LM rows get their final hidden states so the generative loss can compute logits chunk
//! by chunk over positions with [`RewardModel::lm_logits`]: no `[rows, len, vocab]` tensor is ever
//! built for reward rows, and none at all unless the caller asks for it.

use burn::module::{Module, Param};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::backbone::Backbone;
use crate::batch::ModelInput;
use crate::config::{DecoderConfig, HeadKind, RewardModelConfig};
use crate::error::{ModelError, Result};
use crate::heads::{LmHead, ValueHead, LM_HEAD_WEIGHT};
use crate::weights::{Builder, ParamInit, RandomSource, WeightSource};

#[derive(Module, Debug)]
pub struct RewardModel<B: Backend> {
    pub backbone: Backbone<B>,
    pub value_head: ValueHead<B>,
    pub lm_head: LmHead<B>,
    pub config: DecoderConfig,
}

/// What one forward returns.
#[derive(Debug, Clone)]
pub struct ModelOutput<B: Backend> {
    /// `[reward_rows.len()]`, in the order of `ModelInput::reward_rows`.
    pub rewards: Tensor<B, 1>,
    /// `[lm_rows.len(), seq_len, hidden]` final normed hidden states of the LM rows, in the order
    /// of `ModelInput::lm_rows`; `None` when there are no LM rows.
    pub lm_hidden: Option<Tensor<B, 3>>,
}

impl<B: Backend> RewardModel<B> {
    /// A model with seeded random weights (transformers' init scheme); cheap for tiny configs.
    pub fn init(config: &RewardModelConfig, seed: u64, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let mut src = RandomSource::new(seed);
        let mut b = Builder::new(&mut src, device);
        let backbone = Backbone::build(&config.decoder, &mut b)?;
        let value_head = ValueHead::build(
            config.head,
            config.decoder.hidden_size,
            config.decoder.initializer_range,
            &mut b,
        )?;
        let lm_head = if config.decoder.tie_word_embeddings {
            LmHead::tied()
        } else if config.lm_head {
            LmHead {
                weight: Some(Param::from_tensor(lm_weight(&config.decoder, &mut b)?)),
                tied: false,
            }
        } else {
            LmHead::absent()
        };
        Ok(Self {
            backbone,
            value_head,
            lm_head,
            config: config.decoder.clone(),
        })
    }

    /// Builds from sources: the backbone (and an untied LM head when `load_lm_head`) from
    /// `weights`, the value head from `head` (which may be the same checkpoint or a fresh
    /// [`RandomSource`]).
    pub fn build(
        decoder: &DecoderConfig,
        head_kind: HeadKind,
        weights: &mut dyn WeightSource,
        head: Option<&mut dyn WeightSource>,
        load_lm_head: bool,
        device: &B::Device,
    ) -> Result<Self> {
        decoder.validate()?;
        let mut b = Builder::new(weights, device);
        let backbone = Backbone::build(decoder, &mut b)?;
        let lm_head = if decoder.tie_word_embeddings {
            LmHead::tied()
        } else if load_lm_head {
            LmHead {
                weight: Some(Param::from_tensor(lm_weight(decoder, &mut b)?)),
                tied: false,
            }
        } else {
            LmHead::absent()
        };
        let value_head = match head {
            Some(src) => ValueHead::build(
                head_kind,
                decoder.hidden_size,
                decoder.initializer_range,
                &mut Builder::new(src, device),
            )?,
            None => ValueHead::build(
                head_kind,
                decoder.hidden_size,
                decoder.initializer_range,
                &mut b,
            )?,
        };
        Ok(Self {
            backbone,
            value_head,
            lm_head,
            config: decoder.clone(),
        })
    }

    pub fn head_kind(&self) -> HeadKind {
        self.value_head.kind()
    }

    /// Checks what a forward would otherwise only catch by panicking (token ids beyond the vocabulary).
    pub fn check_input(&self, input: &ModelInput<B>) -> Result<()> {
        if input.max_id as usize >= self.config.vocab_size {
            return Err(ModelError::Usage(format!(
                "token id {} is outside the model's vocabulary ({} ids); tokenizer and model do not match",
                input.max_id, self.config.vocab_size
            )));
        }
        if !input.lm_rows.is_empty() && !self.lm_head.is_present() {
            return Err(ModelError::Usage(
                "LM rows requested but this model has no LM head".into(),
            ));
        }
        Ok(())
    }

    /// Final normed hidden states of every row, `[rows, seq_len, hidden]`.
    pub fn hidden_states(&self, input: &ModelInput<B>) -> Tensor<B, 3> {
        if let Err(e) = self.check_input(input) {
            panic!("{e}");
        }
        self.backbone.forward(
            input.input_ids.clone(),
            &input.valid,
            input.positions.clone(),
        )
    }

    /// Rewards for the reward rows and hidden states for the LM rows, from one backbone pass.
    pub fn forward(&self, input: &ModelInput<B>) -> ModelOutput<B> {
        let hidden = self.hidden_states(input);
        let [rows, len, h] = hidden.dims();
        let rewards = match &input.reward_index {
            Some(idx) => self.value_head.forward(
                hidden
                    .clone()
                    .reshape([rows * len, h])
                    .select(0, idx.clone()),
            ),
            None => Tensor::zeros([0], &hidden.device()),
        };
        let lm_hidden = input
            .lm_index
            .as_ref()
            .map(|idx| hidden.select(0, idx.clone()));
        ModelOutput { rewards, lm_hidden }
    }

    /// The LM head matrix `[vocab, hidden]` (the embeddings when tied); `None` if absent.
    pub fn lm_head_weight(&self) -> Option<Tensor<B, 2>> {
        if self.lm_head.tied {
            Some(self.backbone.embed_tokens.weight.val())
        } else {
            self.lm_head.weight.as_ref().map(|w| w.val())
        }
    }

    /// LM logits for a chunk of hidden states: `[rows, chunk, hidden]` -> `[rows, chunk, vocab]`.
    ///
    /// # Panics
    /// If the model has no LM head (see [`RewardModel::check_input`]).
    pub fn lm_logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let w = self.lm_head_weight().expect("this model has no LM head");
        let [rows, len, h] = hidden.dims();
        let [vocab, _] = w.dims();
        rmd_kernels::matmul(hidden.reshape([rows * len, h]), w.transpose()).reshape([rows, len, vocab])
    }

    /// `log p(target | prefix)` for a chunk: hidden `[rows, chunk, hidden]`, targets
    /// `[rows, chunk]` -> `[rows, chunk]`. Materializes `[rows, chunk, vocab]` for this chunk only.
    pub fn lm_target_log_probs(
        &self,
        hidden: Tensor<B, 3>,
        targets: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        let [rows, len] = targets.dims();
        let logp = log_softmax(self.lm_logits(hidden), 2);
        logp.gather(2, targets.reshape([rows, len, 1]))
            .reshape([rows, len])
    }
}

fn lm_weight<B: Backend>(c: &DecoderConfig, b: &mut Builder<'_, B>) -> Result<Tensor<B, 2>> {
    b.tensor(
        LM_HEAD_WEIGHT,
        [c.vocab_size, c.hidden_size],
        ParamInit::Normal {
            std: c.initializer_range,
        },
    )
}
