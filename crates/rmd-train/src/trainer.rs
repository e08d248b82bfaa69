//! The training loop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{adaptor::OptimizerAdaptor, AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::{backend::AutodiffBackend, ElementConversion, Int, Tensor, TensorData};
use rmd_loss::generative::{kl_loss, sft_loss, ChunkConfig, LmInput, TeacherDistribution, TokenTargets, IGNORE_INDEX};
use rmd_loss::{PairBatch, RewardObjective};
use rmd_model::text::truncate::{make_batch, Truncation};
use rmd_model::{ModelInput, RewardModel, TokenBatch};
use serde_json::{json, Map, Value};

use crate::checkpoint::{self, TrainState};
use crate::clip::{clip_global_norm, global_norm};
use crate::data::{epoch_order, EncodedPair};
use crate::evaluate::{evaluate_pairs, EvalMetrics};
use crate::metrics::MetricsWriter;
use crate::parallel::{merge_metrics, shard, DataParallel, ShardStep};
use crate::precision::{compute_copy, loss_dtype};
use crate::schedule::lr_at;
use crate::{EncodedSet, KlSource, TrainConfig, TrainError};

/// Token ids the batcher needs from the tokenizer.
#[derive(Debug, Clone, Copy)]
pub struct TokenSpec {
    pub bos: Option<u32>,
    pub pad: u32,
}

/// One finished optimizer step, as logged.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Steps completed (1-based).
    pub step: usize,
    pub total_steps: usize,
    pub epoch: usize,
    pub lr: f64,
    pub loss: f64,
    pub grad_norm: f64,
    pub components: Vec<(String, f64)>,
    pub tokens: usize,
    pub seconds: f64,
    pub eval: Option<EvalMetrics>,
}

/// What a step callback asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepControl {
    Continue,
    /// Stop now, as if killed: nothing more is written (tests use this to simulate a crash).
    Stop,
}

type Optim<B> = OptimizerAdaptor<AdamW, RewardModel<B>, B>;

pub struct Trainer<B: AutodiffBackend> {
    model: Option<RewardModel<B>>,
    optim: Optim<B>,
    objective: Box<dyn RewardObjective<B>>,
    teacher: Option<RewardModel<B::InnerBackend>>,
    config: TrainConfig,
    tokens: TokenSpec,
    train: EncodedSet,
    eval: Option<EncodedSet>,
    out_dir: PathBuf,
    state: TrainState,
    metrics: MetricsWriter,
    last_checkpoint: Option<PathBuf>,
    device: B::Device,
    /// Replicas on `devices[1..]` when training on several devices (`device` is rank 0's).
    parallel: Option<DataParallel<B, Optim<B>>>,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Starts a run in `out_dir`, or resumes it from its latest checkpoint if it has one (the
    /// config must then be the one the run started with). One device: `config.devices` must be 1.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: RewardModel<B>,
        config: TrainConfig,
        tokens: TokenSpec,
        train: EncodedSet,
        eval: Option<EncodedSet>,
        teacher: Option<RewardModel<B::InnerBackend>>,
        out_dir: &Path,
        device: B::Device,
    ) -> Result<Self, TrainError> {
        Self::with_devices(model, config, tokens, train, eval, teacher, out_dir, vec![device])
    }

    /// As [`Trainer::new`], data-parallel over `devices` (`config.devices` of them; they may
    /// repeat, e.g. several replicas on one CPU). `model` and `teacher` are on `devices[0]`
    /// (rank 0, which evaluates, logs and checkpoints); the others get replicas. See
    /// [`crate::parallel`].
    #[allow(clippy::too_many_arguments)]
    pub fn with_devices(
        model: RewardModel<B>,
        config: TrainConfig,
        tokens: TokenSpec,
        train: EncodedSet,
        eval: Option<EncodedSet>,
        teacher: Option<RewardModel<B::InnerBackend>>,
        out_dir: &Path,
        devices: Vec<B::Device>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        if devices.len() != config.devices {
            return Err(TrainError::Config(format!(
                "config.devices = {} but {} device(s) were given{}",
                config.devices,
                devices.len(),
                if devices.len() == 1 { "; pass them all to Trainer::with_devices" } else { "" }
            )));
        }
        if config.devices > config.pairs_per_micro_batch {
            tracing::warn!(
                devices = config.devices,
                pairs_per_micro_batch = config.pairs_per_micro_batch,
                "fewer pairs per micro-batch than devices: some devices idle on every micro-batch"
            );
        }
        let device = devices[0].clone();
        if train.is_empty() {
            return Err(TrainError::Config("the training set is empty".into()));
        }
        if config.weights.kl > 0.0 {
            check_kl_source(&config, teacher.is_some(), &train, &model)?;
        }
        if (config.weights.sft > 0.0 || config.weights.kl > 0.0) && model.lm_head_weight().is_none() {
            return Err(TrainError::Config("the SFT/KL regularizers need the model's LM head".into()));
        }
        std::fs::create_dir_all(out_dir).map_err(crate::error::io_err(out_dir))?;
        let objective = config.objective.build::<B>(config.margin_source.into(), config.centering)?;
        let o = &config.optimizer;
        // PyTorch's AdamW defaults, explicitly: burn's own are eps 1e-5 and weight decay 1e-4.
        let mut optim = AdamWConfig::new()
            .with_beta_1(o.beta1)
            .with_beta_2(o.beta2)
            .with_epsilon(o.eps)
            .with_weight_decay(o.weight_decay)
            .init::<B, RewardModel<B>>();
        let steps_per_epoch = train.len().div_ceil(config.pairs_per_step());
        let config_json = config.trajectory_json();
        let mut state = TrainState {
            step: 0,
            total_steps: steps_per_epoch * config.epochs,
            seed: config.seed,
            train_pairs: train.len(),
            config_json: config_json.clone(),
        };
        let mut model = match &config.lora {
            Some(l) if !model.has_lora() => model.with_lora(l, &device)?,
            _ => model,
        };
        let latest = checkpoint::latest(out_dir)?;
        if let Some(dir) = &latest {
            let saved = checkpoint::load_state(dir)?;
            if saved.config_json != config_json || saved.train_pairs != train.len() {
                return Err(TrainError::Checkpoint {
                    path: dir.clone(),
                    message: "this run directory was started with a different config or training set; use a new --out".into(),
                });
            }
            let (m, op) = checkpoint::load_into(dir, model, optim, &device)?;
            model = m;
            optim = op;
            tracing::info!(step = saved.step, dir = %dir.display(), "resuming from checkpoint");
            state = saved;
        }
        // Replicas are copies of rank 0 after any resume, so they start from the checkpoint.
        let parallel = match devices.len() {
            1 => None,
            _ => Some(DataParallel::new(&model, &optim, teacher.as_ref(), &devices)?),
        };
        let metrics = MetricsWriter::open(&out_dir.join("metrics.jsonl"), latest.as_ref().map(|_| state.step))?;
        Ok(Self {
            model: Some(model),
            optim,
            objective,
            teacher,
            config,
            tokens,
            train,
            eval,
            out_dir: out_dir.to_path_buf(),
            state,
            metrics,
            last_checkpoint: latest,
            device,
            parallel,
        })
    }

    /// Every replica's model, rank 0 (the trainer's own) first; one entry on one device.
    pub fn replicas(&self) -> Vec<&RewardModel<B>> {
        let mut v = vec![self.model()];
        if let Some(p) = &self.parallel {
            v.extend(p.replicas().iter().map(|r| r.model()));
        }
        v
    }

    pub fn model(&self) -> &RewardModel<B> {
        self.model.as_ref().expect("model present between steps")
    }

    pub fn into_model(mut self) -> RewardModel<B> {
        self.model.take().expect("model present between steps")
    }

    pub fn step(&self) -> usize {
        self.state.step
    }

    pub fn total_steps(&self) -> usize {
        let cap = self.config.max_steps.unwrap_or(usize::MAX);
        self.state.total_steps.min(cap)
    }

    /// Trains to the end (or `max_steps`), calling `on_step` after every optimizer step.
    pub fn fit(&mut self, on_step: &mut dyn FnMut(&StepRecord) -> StepControl) -> Result<(), TrainError> {
        let total = self.total_steps();
        let bar = self.config.progress_bar.then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps {msg} [{elapsed_precise}<{eta_precise}]").unwrap());
            b.set_position(self.state.step as u64);
            b
        });
        while self.state.step < total {
            let rec = self.train_step()?;
            if let Some(b) = &bar {
                b.set_position(rec.step as u64);
                b.set_message(format!("loss {:.4}", rec.loss));
            }
            if on_step(&rec) == StepControl::Stop {
                return Ok(());
            }
        }
        if let Some(b) = bar {
            b.finish();
        }
        if self.config.checkpoint_every.is_some() && self.last_checkpoint.as_ref().map(|d| checkpoint::load_state(d).map(|s| s.step)).transpose()? != Some(self.state.step) {
            self.save_checkpoint()?;
        }
        Ok(())
    }

    fn save_checkpoint(&mut self) -> Result<(), TrainError> {
        let dir = checkpoint::save(&self.out_dir, self.model(), &self.optim, &self.state, self.config.keep_checkpoints)?;
        self.last_checkpoint = Some(dir);
        Ok(())
    }

    /// The pair indices of optimizer step `step`, split into micro-batches.
    fn step_batches(&self, step: usize) -> (usize, Vec<Vec<usize>>) {
        let pps = self.config.pairs_per_step();
        let n = self.train.len();
        let spe = n.div_ceil(pps);
        let (epoch, within) = (step / spe, step % spe);
        let order = epoch_order(n, self.config.seed, epoch);
        let idx = &order[within * pps..((within + 1) * pps).min(n)];
        (epoch, idx.chunks(self.config.pairs_per_micro_batch).map(|c| c.to_vec()).collect())
    }

    pub fn train_step(&mut self) -> Result<StepRecord, TrainError> {
        let started = Instant::now();
        let step = self.state.step;
        let o = self.config.optimizer;
        let lr = lr_at(step, self.state.total_steps, o.lr, o.warmup_ratio, o.min_lr_ratio);
        let (epoch, micros) = self.step_batches(step);
        let step_pairs: usize = micros.iter().map(Vec::len).sum();
        let model = self.model.take().expect("model present between steps");
        let (model, outcome) = match self.parallel.is_some() {
            false => self.single_device_step(model, &micros, step, step_pairs, lr),
            true => self.data_parallel_step(model, &micros, step, step_pairs, lr),
        };
        self.model = Some(model);
        let (loss_sum, comp_sum, tokens, grad_norm) = outcome?;
        self.state.step += 1;
        let step = self.state.step;

        let mut eval = None;
        if let (Some(every), Some(set)) = (self.config.eval_every, &self.eval) {
            if step % every == 0 || step == self.total_steps() {
                eval = Some(self.evaluate(set)?);
            }
        }
        let rec = StepRecord {
            step,
            total_steps: self.total_steps(),
            epoch,
            lr,
            loss: loss_sum,
            grad_norm,
            components: comp_sum,
            tokens,
            seconds: started.elapsed().as_secs_f64(),
            eval,
        };
        self.metrics.write(&record_json(&rec))?;
        if let Some(every) = self.config.checkpoint_every {
            if step % every == 0 {
                self.save_checkpoint()?;
            }
        }
        Ok(rec)
    }

    /// Gradients and weighted loss of `micros` (one replica's share of step `step`): each
    /// micro-batch's loss is weighted by its share of the step's `step_pairs` pairs.
    #[allow(clippy::too_many_arguments)]
    fn shard_step(
        &self,
        model: &RewardModel<B>,
        teacher: Option<&RewardModel<B::InnerBackend>>,
        device: &B::Device,
        rank: usize,
        micros: &[&[usize]],
        step: usize,
        step_pairs: usize,
    ) -> Result<ShardStep, TrainError> {
        let mut acc = GradientsAccumulator::<RewardModel<B>>::new();
        let mut out = ShardStep::empty();
        for (mi, idx) in micros.iter().enumerate() {
            if idx.is_empty() {
                continue; // a replica's share of a micro-batch smaller than the device count
            }
            let (loss, comps, n_tokens) = {
                let _rng = self.parallel.as_ref().and_then(|p| p.rng_guard());
                // Dropout masks depend only on (seed, step, micro-batch, rank): a resumed run
                // draws the same; rank 0 draws what a single-device run draws.
                let seed = self.config.seed.wrapping_mul(1_000_003).wrapping_add((step * 1024 + mi) as u64);
                B::seed(device, seed.wrapping_add((rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
                self.micro_loss(model, teacher, device, idx)?
            };
            let frac = idx.len() as f64 / step_pairs as f64;
            out.tokens += n_tokens;
            let value = loss.clone().into_scalar().elem::<f64>();
            if !value.is_finite() {
                let bad = comps.iter().find(|(_, v)| !v.is_finite()).cloned().unwrap_or(("loss".into(), value));
                return Err(TrainError::NonFinite { step: step + 1, micro: mi, component: bad.0, value: bad.1, last_checkpoint: self.last_checkpoint.clone() });
            }
            out.loss += value * frac;
            for (k, v) in comps {
                out.add_component(k, v * frac);
            }
            let grads = GradientsParams::from_grads(loss.mul_scalar(frac).backward(), model);
            acc.accumulate(model, grads);
        }
        out.grads = acc.grads();
        Ok(out)
    }

    /// Loss, components, tokens and gradient norm of a step on one device, and the stepped model.
    #[allow(clippy::type_complexity)]
    fn single_device_step(
        &mut self,
        model: RewardModel<B>,
        micros: &[Vec<usize>],
        step: usize,
        step_pairs: usize,
        lr: f64,
    ) -> (RewardModel<B>, Result<(f64, Vec<(String, f64)>, usize, f64), TrainError>) {
        let micros: Vec<&[usize]> = micros.iter().map(Vec::as_slice).collect();
        let local = match self.shard_step(&model, self.teacher.as_ref(), &self.device, 0, &micros, step, step_pairs) {
            Ok(l) => l,
            Err(e) => return (model, Err(e)),
        };
        let mut grads = local.grads;
        let grad_norm = match self.config.optimizer.max_grad_norm {
            Some(max) => clip_global_norm::<B, _>(&model, &mut grads, max),
            None => global_norm::<B, _>(&model, &grads),
        };
        if !grad_norm.is_finite() {
            return (model, Err(self.non_finite_norm(step, micros.len(), grad_norm)));
        }
        (self.optim.step(lr, model, grads), Ok((local.loss, local.components, local.tokens, grad_norm)))
    }

    /// As [`Self::single_device_step`], with every micro-batch split across the replicas
    /// (each on its own thread) and their gradients summed with burn-collective.
    #[allow(clippy::type_complexity)]
    fn data_parallel_step(
        &mut self,
        model: RewardModel<B>,
        micros: &[Vec<usize>],
        step: usize,
        step_pairs: usize,
        lr: f64,
    ) -> (RewardModel<B>, Result<(f64, Vec<(String, f64)>, usize, f64), TrainError>) {
        let world = self.parallel.as_ref().expect("data-parallel trainer").world();
        // per_rank[r][mi]: rank r's share of micro-batch mi.
        let mut per_rank: Vec<Vec<&[usize]>> = vec![Vec::with_capacity(micros.len()); world];
        for m in micros {
            for (r, part) in shard(m, world).into_iter().enumerate() {
                per_rank[r].push(part);
            }
        }
        let this: &Self = self;
        let par = this.parallel.as_ref().expect("data-parallel trainer");
        let results: Vec<Result<ShardStep, TrainError>> = std::thread::scope(|s| {
            let handles: Vec<_> = par
                .replicas()
                .iter()
                .enumerate()
                .map(|(i, rep)| {
                    let mine = &per_rank[i + 1];
                    s.spawn(move || this.shard_step(rep.model(), rep.teacher.as_ref(), &rep.device, i + 1, mine, step, step_pairs))
                })
                .collect();
            let mut out = vec![this.shard_step(&model, this.teacher.as_ref(), &this.device, 0, &per_rank[0], step, step_pairs)];
            out.extend(handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))));
            out
        });
        // The lowest rank's error wins; no collective has started, so no replica is waiting.
        let steps: Vec<ShardStep> = match results.into_iter().collect() {
            Ok(v) => v,
            Err(e) => return (model, Err(e)),
        };
        let (loss, comps, tokens) = merge_metrics(&steps);
        let grads = steps.into_iter().map(|s| s.grads).collect();
        let max_norm = self.config.optimizer.max_grad_norm;
        let par = self.parallel.as_mut().expect("data-parallel trainer");
        let (model, norm) = par.sync_and_step(model, &mut self.optim, grads, lr, max_norm);
        let result = match norm {
            Ok(n) if n.is_finite() => Ok((loss, comps, tokens, n)),
            Ok(n) => Err(self.non_finite_norm(step, micros.len(), n)),
            Err(e) => Err(e),
        };
        (model, result)
    }

    fn non_finite_norm(&self, step: usize, micros: usize, value: f64) -> TrainError {
        TrainError::NonFinite { step: step + 1, micro: micros - 1, component: "grad_norm".into(), value, last_checkpoint: self.last_checkpoint.clone() }
    }

    /// Evaluates the current model (no autodiff graph) on `set`.
    pub fn evaluate(&self, set: &EncodedSet) -> Result<EvalMetrics, TrainError> {
        let model = self.model().valid();
        evaluate_pairs(
            &model,
            set,
            self.config.pairs_per_micro_batch,
            self.config.max_length,
            self.tokens.bos,
            self.tokens.pad,
            self.config.padding_side,
            &self.device,
        )
    }

    /// Loss of one micro-batch: one forward over reward rows (and LM rows when regularizing).
    /// `model`, `teacher` and the input tensors live on `device` (one replica's).
    fn micro_loss(
        &self,
        model: &RewardModel<B>,
        teacher: Option<&RewardModel<B::InnerBackend>>,
        device: &B::Device,
        idx: &[usize],
    ) -> Result<(Tensor<B, 1>, Vec<(String, f64)>, usize), TrainError> {
        let pairs: Vec<&EncodedPair> = idx.iter().map(|&i| &self.train.pairs[i]).collect();
        let n = pairs.len();
        let w = self.config.weights;
        let need_lm = w.sft > 0.0 || w.kl > 0.0;
        let mut enc = Vec::with_capacity(n * 3);
        enc.extend(pairs.iter().map(|p| p.chosen.clone()));
        enc.extend(pairs.iter().map(|p| p.rejected.clone()));
        if need_lm {
            for (k, p) in pairs.iter().enumerate() {
                let t = p.teacher.clone().ok_or_else(|| TrainError::Data { id: p.id.clone(), row: idx[k], message: "no teacher_response".into() })?;
                enc.push(t);
            }
        }
        let (batch, cuts) = make_batch(&enc, self.config.max_length, self.tokens.bos, self.tokens.pad, self.config.padding_side)?;
        for c in &cuts {
            tracing::debug!(row = c.index, original = c.original_len, prompt_dropped = c.prompt_tokens_dropped, response_dropped = c.response_tokens_dropped, "truncated");
        }
        let tokens = batch.lengths.iter().sum();
        let lm_rows: Vec<usize> = if need_lm { (2 * n..3 * n).collect() } else { Vec::new() };
        let input = ModelInput::<B>::new(&batch, (0..2 * n).collect(), lm_rows, device)?;
        model.check_input(&input)?;
        let master = model.backbone.embed_tokens.weight.val().dtype();
        let compute = compute_copy(model, self.config.precision.dtype(), master);
        let model = compute.as_ref().unwrap_or(model);
        let out = model.forward(&input);
        let acc = loss_dtype(master);
        let rewards = out.rewards.cast(acc);
        let chosen = rewards.clone().slice([0..n]);
        let rejected = rewards.slice([n..2 * n]);
        let mut pb = PairBatch::new(chosen, rejected);
        let col = |f: &dyn Fn(&EncodedPair) -> Option<f64>| -> Option<Tensor<B, 1>> {
            let v: Option<Vec<f32>> = pairs.iter().map(|p| f(p).map(|x| x as f32)).collect();
            v.map(|v| Tensor::<B, 1>::from_data(TensorData::new(v, [n]), device).cast(acc))
        };
        if let (Some(c), Some(r)) = (col(&|p| p.chosen_score), col(&|p| p.rejected_score)) {
            pb = pb.with_scores(c, r);
        }
        if let Some(m) = col(&|p| p.margin) {
            pb = pb.with_margin(m);
        }
        let reward = self.objective.loss(&pb)?;
        let mut comps: Vec<(String, f64)> = reward.component_values();
        let mut total = reward.loss.mul_scalar(w.reward);
        if need_lm {
            // Stored top-k: the targets are the teacher's own tokens, each with its distribution.
            let stored = (w.kl > 0.0 && self.config.kl_source == KlSource::Stored).then_some((&cuts[..], self.tokens.bos));
            let (targets, teacher_tokens) = lm_targets(&batch, n, &pairs, idx, stored)?;
            let hidden = out.lm_hidden.expect("LM rows were requested");
            let input = LmInput::Hidden { hidden, head_weight: model.lm_head_weight().expect("checked in new()") };
            let chunk = ChunkConfig { positions_per_chunk: self.config.lm_chunk };
            if w.sft > 0.0 {
                let sft = sft_loss(&input, &targets, chunk)?;
                comps.push(("sft".into(), sft.clone().into_scalar().elem::<f64>()));
                total = total + sft.mul_scalar(w.sft);
            }
            if w.kl > 0.0 {
                let dist = match &teacher_tokens {
                    Some(who) => stored_distribution::<B>(&pairs, who, device),
                    None => teacher_distribution::<B>(teacher.expect("checked in new()"), &batch, n, &targets, device)?,
                };
                let kl = kl_loss(&input, &dist, &targets, self.config.kl_temperature, chunk)?;
                comps.push(("kl".into(), kl.clone().into_scalar().elem::<f64>()));
                total = total + kl.mul_scalar(w.kl);
            }
        }
        Ok((total, comps, tokens))
    }
}

/// For every scored position of a stored-top-k batch: (pair within the micro-batch, teacher token).
type TeacherTokens = Vec<(usize, usize)>;

/// HF-style labels for the LM rows (rows `2n..3n` of `batch`): the response tokens, with the
/// prompt and padding ignored. With `stored` (the truncations of the batch and the BOS id),
/// only the teacher's own tokens are labels, and the teacher token behind every scored
/// position is returned with the targets.
fn lm_targets(
    batch: &TokenBatch,
    n: usize,
    pairs: &[&EncodedPair],
    idx: &[usize],
    stored: Option<(&[Truncation], Option<u32>)>,
) -> Result<(TokenTargets, Option<TeacherTokens>), TrainError> {
    let l = batch.seq_len;
    let mut labels = Vec::with_capacity(n * l);
    let mut who: Vec<Option<(usize, usize)>> = vec![None; if stored.is_some() { n * l } else { 0 }];
    for k in 0..n {
        let r = 2 * n + k;
        let row = match stored {
            None => {
                let ids: Vec<i64> = batch.ids[r * l..(r + 1) * l].iter().map(|&i| i as i64).collect();
                TokenTargets::labels_for_row(&ids, &batch.valid[r * l..(r + 1) * l], batch.prompt_lens[r])
            }
            Some((cuts, bos)) => {
                let topk = pairs[k].stored_topk.as_ref().expect("checked in Trainer::new");
                let original = pairs[k].teacher.as_ref().expect("stored top-k comes with the teacher row");
                // Truncation removes one run of tokens right after an optional leading BOS;
                // teacher tokens inside it are gone, those after it move left.
                let dropped = cuts.iter().find(|c| c.index == r).map_or(0, |c| c.prompt_tokens_dropped + c.response_tokens_dropped);
                let head = usize::from(bos.is_some() && original.ids.first() == bos.as_ref());
                let col0 = batch.start(r);
                let mut row = vec![IGNORE_INDEX; l];
                for j in 0..topk.len() {
                    let i = topk.start + j;
                    let i = match i {
                        i if i < head => i,
                        i if i < head + dropped => continue,
                        i => i - dropped,
                    };
                    let c = col0 + i;
                    debug_assert!(batch.valid[r * l + c], "teacher token {j} of pair {} lands on padding", pairs[k].id);
                    row[c] = batch.ids[r * l + c] as i64;
                    who[k * l + c] = Some((k, j));
                }
                row
            }
        };
        // Position 0 predicts nothing, so a row needs a target after it.
        if row[1..].iter().all(|&x| x == IGNORE_INDEX) {
            return Err(TrainError::Data {
                id: pairs[k].id.clone(),
                row: idx[k],
                message: "the teacher response has no tokens left after truncation; raise max_length".into(),
            });
        }
        labels.extend(row);
    }
    let targets = TokenTargets::from_labels(&labels, n, l)?;
    // Position p predicts the label at p + 1.
    let teacher_tokens = stored.map(|_| targets.positions.iter().map(|&p| who[p + 1].expect("a scored position has a teacher token")).collect());
    Ok((targets, teacher_tokens))
}

/// The stored teacher top-k at the scored positions: `[positions, k]` student ids and teacher
/// log-probs, each row padded to the widest with log-prob -inf (probability 0).
fn stored_distribution<B: AutodiffBackend>(pairs: &[&EncodedPair], who: &[(usize, usize)], device: &B::Device) -> TeacherDistribution<B> {
    let cands: Vec<(&[u32], &[f32])> =
        who.iter().map(|&(k, j)| pairs[k].stored_topk.as_ref().expect("checked in Trainer::new").candidates(j)).collect();
    let width = cands.iter().map(|c| c.0.len()).max().unwrap_or(1).max(1);
    let (mut ids, mut logprobs) = (Vec::with_capacity(cands.len() * width), Vec::with_capacity(cands.len() * width));
    for (ci, cl) in &cands {
        for x in 0..width {
            ids.push(i64::from(*ci.get(x).unwrap_or(&ci[0])));
            logprobs.push(cl.get(x).copied().unwrap_or(f32::NEG_INFINITY));
        }
    }
    let shape = [cands.len(), width];
    TeacherDistribution::TopK {
        ids: Tensor::<B, 2, Int>::from_data(TensorData::new(ids, shape), device),
        logprobs: Tensor::<B, 2>::from_data(TensorData::new(logprobs, shape), device),
    }
}

/// The KL source's requirements, checked once before training.
fn check_kl_source<B: AutodiffBackend>(config: &TrainConfig, has_teacher: bool, train: &EncodedSet, model: &RewardModel<B>) -> Result<(), TrainError> {
    match config.kl_source {
        KlSource::Model if !has_teacher => Err(TrainError::Config(
            "weights.kl > 0 with kl_source = \"model\" needs a frozen teacher model (same vocabulary); \
             or record top-k log-probs at synthesis and use kl_source = \"stored\""
                .into(),
        )),
        KlSource::Model => Ok(()),
        KlSource::Stored if has_teacher => Err(TrainError::Config(
            "kl_source = \"stored\" reads the teacher distribution from the data, but a teacher model was given too; \
             drop it or use kl_source = \"model\""
                .into(),
        )),
        KlSource::Stored => {
            let vocab = model.lm_head_weight().map(|w| w.dims()[0]);
            for (row, p) in train.pairs.iter().enumerate() {
                let err = |message: String| Err(TrainError::Data { id: p.id.clone(), row, message });
                match (&p.stored_topk, vocab) {
                    (None, _) => return err("kl_source = \"stored\", but this pair was encoded without its stored top-k log-probs (EncodeOptions::stored_kl)".into()),
                    (Some(s), Some(v)) if s.max_id() as usize >= v => {
                        return err(format!("stored top-k token id {} is outside the model's vocabulary of {v}", s.max_id()))
                    }
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

/// The LM rows (`2n..3n`) of `batch` alone, with the same padded length so target positions
/// computed on the joint batch still index them.
fn lm_rows_batch(batch: &TokenBatch, n: usize) -> TokenBatch {
    let l = batch.seq_len;
    let rows = 2 * n..3 * n;
    TokenBatch {
        ids: batch.ids[rows.start * l..rows.end * l].to_vec(),
        valid: batch.valid[rows.start * l..rows.end * l].to_vec(),
        rows: n,
        seq_len: l,
        side: batch.side,
        pad_id: batch.pad_id,
        lengths: batch.lengths[rows.clone()].to_vec(),
        prompt_lens: batch.prompt_lens[rows].to_vec(),
    }
}

/// The frozen teacher's hidden states at the scored positions (computed without a graph).
fn teacher_distribution<B: AutodiffBackend>(
    teacher: &RewardModel<B::InnerBackend>,
    batch: &TokenBatch,
    n: usize,
    targets: &TokenTargets,
    device: &B::Device,
) -> Result<TeacherDistribution<B>, TrainError> {
    // Only the LM rows go through the frozen teacher; the reward rows are of no use to it.
    let input = ModelInput::<B::InnerBackend>::new(&lm_rows_batch(batch, n), Vec::new(), (0..n).collect(), device)?;
    teacher.check_input(&input)?;
    let hidden = teacher.forward(&input).lm_hidden.expect("LM rows were requested");
    let [rows, len, h] = hidden.dims();
    let pos: Vec<i64> = targets.positions.iter().map(|&p| p as i64).collect();
    let idx = Tensor::<B::InnerBackend, 1, Int>::from_data(TensorData::new(pos, [targets.positions.len()]), device);
    let selected = hidden.reshape([rows * len, h]).select(0, idx);
    let head = teacher.lm_head_weight().ok_or_else(|| TrainError::Config("the KL teacher has no LM head".into()))?;
    Ok(TeacherDistribution::Hidden { hidden: Tensor::from_inner(selected), head_weight: Tensor::from_inner(head) })
}

fn record_json(r: &StepRecord) -> Value {
    let mut m = Map::new();
    m.insert("step".into(), json!(r.step));
    m.insert("epoch".into(), json!(r.epoch));
    m.insert("lr".into(), json!(r.lr));
    m.insert("loss".into(), json!(r.loss));
    m.insert("grad_norm".into(), json!(r.grad_norm));
    for (k, v) in &r.components {
        m.insert(format!("loss/{k}"), json!(v));
    }
    m.insert("tokens".into(), json!(r.tokens));
    m.insert("tokens_per_s".into(), json!(r.tokens as f64 / r.seconds.max(1e-9)));
    if let Some(e) = &r.eval {
        if let Value::Object(em) = serde_json::to_value(e).expect("eval serializes") {
            for (k, v) in em {
                m.insert(format!("eval/{k}"), v);
            }
        }
    }
    Value::Object(m)
}

