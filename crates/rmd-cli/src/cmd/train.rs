//! `rmd train`: fine-tune a reward model from an HF checkpoint on preference pairs.
//!
//! Settings come from a TOML file (`--config`, see examples/train.toml) and/or flags; a flag
//! overrides the file. The run directory (`--out`) gets:
//! - `run.json`: the base model and how its value head was built (what `rmd export --run` needs);
//! - `checkpoints/step-*/` + `metrics.jsonl` (from rmd-train; a rerun resumes from the latest
//!   checkpoint, and refuses to continue a run started with other settings);
//! - `final/`: the trained model as an HF `*ForSequenceClassification` checkpoint with the
//!   tokenizer files; `curves.svg` (losses) and `eval_curves.svg` (periodic evaluation, if any);
//!   `summary.json`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use burn::module::AutodiffModule;
use rmd_core::io::{read_all, ColumnMap, Layout, ReadOptions};
use rmd_core::PreferencePair;
use rmd_eval::{line_chart, read_metrics_jsonl, write_svg, ChartOptions, Series};
use rmd_model::heads::{MLP_FC1, SCORE_WEIGHT};
use rmd_model::weights::{SafetensorsSource, WeightSource};
use rmd_model::{load_pretrained, HeadKind, HeadRequest, HfModelConfig, LoadOptions, TextEncoder};
use rmd_train::trainer::TokenSpec;
use rmd_train::{EncodeOptions, EncodedSet, EvalMetrics, KlSource, ObjectiveConfig, StepControl, StepRecord, TrainConfig, Trainer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::backend;
use crate::cmd::export::{self, DtypeArg};

/// Checkpoint interval when neither the config nor `--checkpoint-every` sets one. `rmd train`
/// always checkpoints (also after the last step) so that runs resume and can be exported.
pub const DEFAULT_CHECKPOINT_EVERY: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadArg {
    /// `score.weight` `[1, H]`, no bias (HF `*ForSequenceClassification`).
    Linear,
    /// The reference head: dropout -> Linear(H, 1024) -> ReLU -> Linear(1024, 1).
    Mlp,
}

/// `--kl-source`: where the KL regularizer's teacher distribution comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KlSourceArg {
    /// A frozen local teacher model (`--kl-teacher DIR`) with the student's vocabulary.
    Model,
    /// The top-k log-probs `rmd synth` stored with each pair (`teacher_logprobs`).
    Stored,
}

impl From<KlSourceArg> for KlSource {
    fn from(a: KlSourceArg) -> Self {
        match a {
            KlSourceArg::Model => KlSource::Model,
            KlSourceArg::Stored => KlSource::Stored,
        }
    }
}

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// TOML config with `[model]`, `[data]`, `[output]` and `[train]` tables (examples/train.toml).
    /// Relative paths in it are resolved against its directory. Flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Base model: an HF checkpoint directory (`*ForCausalLM`, or `*ForSequenceClassification`
    /// to continue from its value head) with its tokenizer files.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Training pairs in any layout rmd reads (JSONL, JSON, Parquet).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Held-out pairs: evaluated every `eval_every` steps (if set) and after training.
    #[arg(long)]
    pub eval_data: Option<PathBuf>,
    /// Run directory (created; an existing run there is resumed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Reward objective: bt, bt-margin, margin-mse, pointwise, soft-bt, log-exp.
    #[arg(long)]
    pub objective: Option<String>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many optimizer steps (the LR schedule still spans all epochs).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Weight of the SFT regularizer on the teacher response (needs `teacher_response`).
    #[arg(long)]
    pub sft_weight: Option<f64>,
    /// Weight of the token-level KL to the teacher (needs --kl-teacher, or --kl-source stored).
    #[arg(long)]
    pub kl_weight: Option<f64>,
    /// The KL's teacher distribution (`[train] kl_source`): `model` (a frozen --kl-teacher,
    /// the default) or `stored` (top-k log-probs recorded by `rmd synth` with
    /// `reference_top_logprobs`; the teacher must tokenize like the student).
    #[arg(long, value_enum)]
    pub kl_source: Option<KlSourceArg>,
    /// Frozen local teacher for the KL regularizer: an HF checkpoint with the student's vocabulary.
    #[arg(long)]
    pub kl_teacher: Option<PathBuf>,
    /// Pairs per micro-batch (one forward/backward).
    #[arg(long)]
    pub batch_pairs: Option<usize>,
    /// Micro-batches per optimizer step.
    #[arg(long)]
    pub accumulation: Option<usize>,
    /// Token limit per text (longer texts lose the prompt's start first).
    #[arg(long)]
    pub max_length: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Value head. Default: the checkpoint's own head, else a fresh linear head.
    #[arg(long, value_enum)]
    pub head: Option<HeadArg>,
    /// Replace a value head stored in the checkpoint with a freshly initialized one.
    #[arg(long)]
    pub fresh_head: bool,
    #[arg(long)]
    pub eval_every: Option<usize>,
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Data-parallel devices (`[train] devices`): GPUs 0..N of a cuda/wgpu build, or N replicas
    /// on the CPU with ndarray. Every micro-batch is split across them (docs/multi-gpu.md).
    #[arg(long)]
    pub devices: Option<usize>,
    /// dtype of OUT/final (default: the base checkpoint's declared dtype).
    #[arg(long, value_enum)]
    pub dtype: Option<DtypeArg>,
    #[command(flatten)]
    pub input: crate::cmd::input::InputArgs,
    /// Extra chat-template variables as a JSON object, e.g. '{"enable_thinking": false}'.
    #[arg(long)]
    pub template_kwargs: Option<String>,
}

/// The TOML file of `rmd train --config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainFile {
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub data: DataSection,
    #[serde(default)]
    pub output: OutputSection,
    /// rmd-train's [`TrainConfig`]; every field optional (defaults: the method's reference setup).
    #[serde(default)]
    pub train: TrainConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub path: Option<PathBuf>,
    pub head: Option<HeadArg>,
    /// MLP head width (head = "mlp"); default 1024.
    pub mlp_hidden: Option<usize>,
    /// MLP head dropout (head = "mlp"); default 0.1.
    pub mlp_dropout: Option<f64>,
    #[serde(default)]
    pub fresh_head: bool,
    pub kl_teacher: Option<PathBuf>,
    pub template_kwargs: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub train: Option<PathBuf>,
    pub eval: Option<PathBuf>,
    pub layout: Option<Layout>,
    pub columns: Option<ColumnMap>,
    #[serde(default)]
    pub lenient: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    pub dir: Option<PathBuf>,
    pub dtype: Option<DtypeArg>,
}

/// Everything a run needs, after merging the file and the flags.
#[derive(Debug)]
struct Plan {
    model: PathBuf,
    data: PathBuf,
    eval_data: Option<PathBuf>,
    out: PathBuf,
    head: Option<HeadKind>,
    fresh_head: bool,
    kl_teacher: Option<PathBuf>,
    template_kwargs: Map<String, Value>,
    read: ReadOptions,
    dtype: DtypeArg,
    config: TrainConfig,
}

/// What `rmd export --run` needs to rebuild a run's model: `OUT/run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub format: u32,
    /// Absolute path of the base checkpoint (architecture, config fields, tokenizer).
    pub base_model: PathBuf,
    /// The value head the model was built with.
    pub head: HeadKind,
    /// True when a head stored in the base checkpoint was replaced by a fresh one.
    pub fresh_head: bool,
    /// Seed of a freshly initialized head.
    pub head_seed: u64,
    /// Whether an untied LM head was loaded (the SFT/KL regularizers train it).
    pub lm_head: bool,
    pub template_kwargs: Map<String, Value>,
    pub train_data: PathBuf,
    pub eval_data: Option<PathBuf>,
    pub kl_teacher: Option<PathBuf>,
    pub rmd_version: String,
}

impl RunInfo {
    pub const FILE: &'static str = "run.json";

    /// The load request that rebuilds the same module structure.
    pub fn head_request(&self) -> HeadRequest {
        if self.fresh_head {
            HeadRequest::Fresh(self.head)
        } else {
            HeadRequest::CheckpointOr(self.head)
        }
    }

    pub fn read(run: &Path) -> anyhow::Result<Self> {
        let p = run.join(Self::FILE);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("{}: not a training run directory of `rmd train` (no readable {})", run.display(), Self::FILE))?;
        serde_json::from_str(&text).with_context(|| format!("{}: malformed run record", p.display()))
    }

    fn write(&self, run: &Path) -> anyhow::Result<()> {
        let p = run.join(Self::FILE);
        let tmp = run.join(format!(".{}.tmp-{}", Self::FILE, std::process::id()));
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n").with_context(|| tmp.display().to_string())?;
        std::fs::rename(&tmp, &p).with_context(|| p.display().to_string())
    }

    /// The fields that must not change when a run is resumed.
    fn identity(&self) -> Value {
        json!([self.base_model, self.head, self.fresh_head, self.head_seed, self.lm_head, self.template_kwargs, self.train_data, self.kl_teacher])
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = plan(&args)?;
    let cfg = &plan.config;
    let devices = training_devices(cfg.devices)?;
    #[allow(clippy::clone_on_copy)] // Copy on ndarray, not on every backend
    let device = devices[0].clone();

    // The value head: explicit request, else the checkpoint's own, else a fresh linear one.
    let stored = stored_head(&plan.model)?;
    let request = match (plan.fresh_head, plan.head, stored) {
        (true, want, _) => HeadRequest::Fresh(want.unwrap_or(HeadKind::Linear)),
        (false, Some(want), _) => HeadRequest::CheckpointOr(want),
        (false, None, Some(k)) => HeadRequest::CheckpointOr(k),
        (false, None, None) => HeadRequest::CheckpointOr(HeadKind::Linear),
    };
    let regularized = cfg.weights.sft > 0.0 || cfg.weights.kl > 0.0;
    let load = LoadOptions { head: request, seed: cfg.seed, lm_head: regularized };
    let ckpt = load_pretrained::<backend::AutodiffBackend>(&plan.model, load, &device)
        .with_context(|| format!("loading the base model {}", plan.model.display()))?;
    let head = ckpt.model.head_kind();
    let encoder = TextEncoder::from_dir(&plan.model)?.with_template_kwargs(plan.template_kwargs.clone());
    if !encoder.has_template() {
        tracing::warn!("{}: no chat template; training on `prompt + response` as plain text", plan.model.display());
    }
    let pad = export::pad_token_id(&plan.model, &ckpt.hf)?;
    let tokens = TokenSpec { bos: encoder.special_tokens().bos.as_ref().map(|t| t.id), pad };

    let kl = cfg.weights.kl > 0.0;
    let teacher = match (&plan.kl_teacher, kl, cfg.kl_source) {
        (Some(dir), true, KlSource::Model) => Some(load_teacher(dir, &encoder, ckpt.model.config.vocab_size, &device)?),
        (None, true, KlSource::Model) => bail!(
            "a KL weight > 0 needs the teacher's distribution: pass --kl-teacher DIR (a frozen local teacher, or [model] kl_teacher), \
             or --kl-source stored to use the top-k log-probs `rmd synth` recorded (teacher.settings.reference_top_logprobs)"
        ),
        (Some(dir), true, KlSource::Stored) => bail!(
            "--kl-teacher {} and --kl-source stored exclude each other: the stored source reads the teacher's distribution from the data",
            dir.display()
        ),
        (None, true, KlSource::Stored) => None,
        (Some(dir), false, _) => bail!("--kl-teacher {} is given but the KL weight is 0; set --kl-weight", dir.display()),
        (None, false, _) => None,
    };

    let train_pairs = read_pairs(&plan.data, &plan.read)?;
    let opts = EncodeOptions {
        need_scores: cfg.objective.needs_scores(),
        need_teacher: regularized,
        stored_kl: kl && cfg.kl_source == KlSource::Stored,
    };
    let train = EncodedSet::encode_with(&train_pairs, &encoder, opts).with_context(|| format!("encoding {}", plan.data.display()))?;
    let eval = match &plan.eval_data {
        Some(p) => {
            let pairs = read_pairs(p, &plan.read)?;
            Some(EncodedSet::encode(&pairs, &encoder, false, false).with_context(|| format!("encoding {}", p.display()))?)
        }
        None => None,
    };

    std::fs::create_dir_all(&plan.out).with_context(|| plan.out.display().to_string())?;
    let info = RunInfo {
        format: 1,
        base_model: absolute(&plan.model)?,
        head,
        fresh_head: matches!(request, HeadRequest::Fresh(_)),
        head_seed: cfg.seed,
        lm_head: regularized,
        template_kwargs: plan.template_kwargs.clone(),
        train_data: absolute(&plan.data)?,
        eval_data: plan.eval_data.as_deref().map(absolute).transpose()?,
        kl_teacher: plan.kl_teacher.as_deref().map(absolute).transpose()?,
        rmd_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if plan.out.join(RunInfo::FILE).exists() {
        let old = RunInfo::read(&plan.out)?;
        if old.identity() != info.identity() {
            bail!(
                "{}: this run was started with another base model, head, data or template settings ({}); use a new --out",
                plan.out.join(RunInfo::FILE).display(),
                old.identity()
            );
        }
    }
    info.write(&plan.out)?;

    let hf = ckpt.hf;
    let dtype = plan.dtype.resolve(&hf.raw, &plan.model)?;
    let n_train = train.len();
    let mut trainer = Trainer::<backend::AutodiffBackend>::with_devices(ckpt.model, cfg.clone(), tokens, train, eval.clone(), teacher, &plan.out, devices)?;
    let start = trainer.step();
    let total = trainer.total_steps();
    println!(
        "training {} ({} head{}) on {n_train} pairs: objective {}, {} steps of {} pairs, backend {}",
        plan.model.display(),
        head.name(),
        if ckpt.head_initialized { ", fresh" } else { "" },
        cfg.objective.name(),
        total,
        cfg.pairs_per_step(),
        backend::name()
    );
    if cfg.devices > 1 {
        println!("data-parallel on {} {} devices (burn-collective all-reduce); each micro-batch of {} pairs is split across them", cfg.devices, backend::name(), cfg.pairs_per_micro_batch);
    }
    if start > 0 {
        println!("resuming at step {start} from {}", rmd_train::checkpoint::checkpoints_dir(&plan.out).display());
    }
    trainer.fit(&mut |rec: &StepRecord| {
        if let Some(e) = &rec.eval {
            tracing::info!(step = rec.step, accuracy = e.accuracy, mean_margin = e.mean_margin, "evaluation");
        }
        StepControl::Continue
    })?;
    let final_eval = match &eval {
        Some(set) => Some(trainer.evaluate(set)?),
        None => None,
    };
    let steps = trainer.step();
    let model = trainer.into_model().valid();

    let final_dir = plan.out.join("final");
    export::export_model(&model, &plan.model, &hf, pad, dtype, &final_dir)?;
    let charts = write_curves(&plan.out)?;
    let last_line = last_metrics(&plan.out.join("metrics.jsonl"))?;
    let summary = json!({
        "steps": steps,
        "resumed_from_step": start,
        "train_pairs": n_train,
        "objective": cfg.objective.name(),
        "final_metrics": last_line,
        "eval": final_eval,
        "final_model": final_dir,
        "dtype": dtype.torch_name(),
    });
    let summary_path = plan.out.join("summary.json");
    let tmp = plan.out.join(".summary.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&summary)? + "\n")?;
    std::fs::rename(&tmp, &summary_path)?;

    println!("steps        {steps} ({} this invocation)", steps - start);
    if let Some(line) = &last_line {
        let comps: Vec<String> = line
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("loss/").and_then(|n| v.as_f64().map(|x| format!("{n} {x:.4}"))))
            .collect();
        if let Some(loss) = line.get("loss").and_then(Value::as_f64) {
            println!("final loss   {loss:.4}{}", if comps.is_empty() { String::new() } else { format!(" ({})", comps.join(", ")) });
        }
    }
    if let Some(e) = &final_eval {
        print_eval(e);
    }
    println!("model        {} ({}, {} head, {})", final_dir.display(), export::architecture(&model), head.name(), dtype.torch_name());
    for c in charts {
        println!("curves       {}", c.display());
    }
    if !plan.template_kwargs.is_empty() {
        println!("note         trained with template kwargs {}; pass the same --template-kwargs to rmd eval/score", Value::Object(plan.template_kwargs.clone()));
    }
    Ok(())
}

fn print_eval(e: &EvalMetrics) {
    let mut s = format!("eval         accuracy {:.4} on {} pairs, mean margin {:.4}", e.accuracy, e.pairs, e.mean_margin);
    if let Some(p) = e.pearson_gap {
        s.push_str(&format!(", pearson(reward gap, teacher gap) {p:.3}"));
    }
    println!("{s}");
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let (file, base) = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading --config {}", p.display()))?;
            let file: TrainFile = toml::from_str(&text).with_context(|| format!("{}: invalid train config", p.display()))?;
            (file, p.parent().map(Path::to_path_buf).unwrap_or_default())
        }
        None => (TrainFile::default(), PathBuf::new()),
    };
    // Paths from the file are relative to the file; paths from flags to the working directory.
    let rel = |p: Option<PathBuf>| p.map(|p| if p.is_absolute() { p } else { base.join(p) });
    let need = |v: Option<PathBuf>, flag: &str, key: &str| {
        v.with_context(|| format!("missing {flag} (or `{key}` in the --config file)"))
    };
    let model = need(args.model.clone().or(rel(file.model.path)), "--model", "[model] path")?;
    let data = need(args.data.clone().or(rel(file.data.train)), "--data", "[data] train")?;
    let out = need(args.out.clone().or(rel(file.output.dir)), "--out", "[output] dir")?;
    let eval_data = args.eval_data.clone().or(rel(file.data.eval));
    let kl_teacher = args.kl_teacher.clone().or(rel(file.model.kl_teacher));

    let head_arg = args.head.or(file.model.head);
    if head_arg != Some(HeadArg::Mlp) && (file.model.mlp_hidden.is_some() || file.model.mlp_dropout.is_some()) {
        bail!("[model] mlp_hidden / mlp_dropout apply to head = \"mlp\" only");
    }
    let head = head_arg.map(|h| match h {
        HeadArg::Linear => HeadKind::Linear,
        HeadArg::Mlp => HeadKind::Mlp {
            hidden: file.model.mlp_hidden.unwrap_or(1024),
            dropout: file.model.mlp_dropout.unwrap_or(0.1),
        },
    });

    let template_kwargs = match &args.template_kwargs {
        Some(s) => parse_template_kwargs(s)?,
        None => file.model.template_kwargs.unwrap_or_default(),
    };

    let read = args.input.read_options(file.data.layout, file.data.columns, file.data.lenient)?;

    let mut config = file.train;
    if let Some(o) = &args.objective {
        config.objective = parse_objective(o)?;
    }
    macro_rules! set {
        ($flag:expr, $field:expr) => {
            if let Some(v) = $flag {
                $field = v;
            }
        };
    }
    set!(args.lr, config.optimizer.lr);
    set!(args.epochs, config.epochs);
    set!(args.sft_weight, config.weights.sft);
    set!(args.kl_weight, config.weights.kl);
    if let Some(s) = args.kl_source {
        config.kl_source = s.into();
    }
    set!(args.batch_pairs, config.pairs_per_micro_batch);
    set!(args.accumulation, config.accumulation_steps);
    set!(args.max_length, config.max_length);
    set!(args.seed, config.seed);
    set!(args.devices, config.devices);
    if args.max_steps.is_some() {
        config.max_steps = args.max_steps;
    }
    if args.eval_every.is_some() {
        config.eval_every = args.eval_every;
    }
    if args.checkpoint_every.is_some() {
        config.checkpoint_every = args.checkpoint_every;
    }
    if config.checkpoint_every.is_none() {
        config.checkpoint_every = Some(DEFAULT_CHECKPOINT_EVERY);
    }
    if config.checkpoint_every == Some(0) || config.eval_every == Some(0) || config.max_steps == Some(0) {
        bail!("checkpoint_every, eval_every and max_steps must be >= 1 when set");
    }
    if config.eval_every.is_some() && eval_data.is_none() {
        bail!("eval_every is set but there is no evaluation data (--eval-data or [data] eval)");
    }
    config.validate()?;
    Ok(Plan {
        model,
        data,
        eval_data,
        out,
        head,
        fresh_head: args.fresh_head || file.model.fresh_head,
        kl_teacher,
        template_kwargs,
        read,
        dtype: args.dtype.or(file.output.dtype).unwrap_or_default(),
        config,
    })
}

/// The devices of `--devices n`: the GPU backend's devices 0..n (an error naming how many are
/// visible when fewer exist), or `n` replicas sharing the CPU with ndarray (for testing).
pub fn training_devices(n: usize) -> anyhow::Result<Vec<burn::tensor::Device<backend::Backend>>> {
    use burn::tensor::backend::{Backend as _, Device as _, DeviceId, DeviceOps as _};
    if n == 0 {
        bail!("--devices must be >= 1");
    }
    let first = backend::device();
    if backend::name() == "ndarray" {
        return Ok(vec![first; n]);
    }
    let type_id = first.id().type_id;
    let visible = backend::Backend::device_count(type_id);
    if n > visible {
        bail!("--devices {n}: only {visible} {} device(s) are visible (check nvidia-smi / CUDA_VISIBLE_DEVICES)", backend::name());
    }
    Ok((0..n).map(|i| burn::tensor::Device::<backend::Backend>::from_id(DeviceId { type_id, index_id: i as u16 })).collect())
}

/// `bt`, `bt-margin`, `margin-mse`, ... (dashes or underscores) with default parameters.
pub fn parse_objective(s: &str) -> anyhow::Result<ObjectiveConfig> {
    let kind = s.trim().to_ascii_lowercase().replace('-', "_");
    serde_json::from_value(json!({ "kind": kind })).map_err(|_| {
        anyhow::anyhow!("unknown objective {s:?}; expected one of bt, bt-margin, margin-mse, pointwise, soft-bt, log-exp")
    })
}

/// A JSON object of extra chat-template variables.
pub fn parse_template_kwargs(s: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(s).context("--template-kwargs is not JSON")? {
        Value::Object(m) => Ok(m),
        other => bail!("--template-kwargs must be a JSON object, got {other}"),
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    p.canonicalize().with_context(|| p.display().to_string())
}

fn read_pairs(path: &Path, read: &ReadOptions) -> anyhow::Result<Vec<PreferencePair>> {
    let (pairs, report) = read_all::<PreferencePair>(path, read).with_context(|| format!("reading {}", path.display()))?;
    if report.skipped_total() > 0 {
        eprintln!("{}: {report}", path.display());
    }
    if pairs.is_empty() {
        bail!("{}: no preference pairs", path.display());
    }
    Ok(pairs)
}

/// The value head a checkpoint stores (declared in its config, else recognized by tensor name).
pub fn stored_head(dir: &Path) -> anyhow::Result<Option<HeadKind>> {
    let hf = HfModelConfig::from_file(&dir.join("config.json"))?;
    if let Some(k) = hf.declared_head {
        return Ok(Some(k));
    }
    let src = SafetensorsSource::open(dir)?;
    if let Some((_, shape)) = src.info(&format!("{MLP_FC1}.weight")) {
        return Ok(Some(HeadKind::Mlp { hidden: shape[0], dropout: 0.1 }));
    }
    Ok(src.contains(SCORE_WEIGHT).then_some(HeadKind::Linear))
}

/// The frozen KL teacher, after checking it tokenizes exactly like the student.
fn load_teacher(
    dir: &Path,
    student: &TextEncoder,
    student_vocab: usize,
    device: &burn::tensor::Device<backend::Backend>,
) -> anyhow::Result<rmd_model::RewardModel<backend::Backend>> {
    let tok = TextEncoder::from_dir(dir).with_context(|| format!("--kl-teacher {}: its tokenizer is needed to check the vocabulary", dir.display()))?;
    if tok.tokenizer().get_vocab(true) != student.tokenizer().get_vocab(true) {
        bail!("--kl-teacher {}: its tokenizer's vocabulary differs from the student's; token-level KL needs the same vocabulary", dir.display());
    }
    let head = stored_head(dir)?.unwrap_or(HeadKind::Linear);
    let opts = LoadOptions { head: HeadRequest::CheckpointOr(head), seed: 0, lm_head: true };
    let t = load_pretrained::<backend::Backend>(dir, opts, device).with_context(|| format!("loading --kl-teacher {}", dir.display()))?;
    if t.model.config.vocab_size != student_vocab {
        bail!(
            "--kl-teacher {}: vocab_size {} but the student has {}; token-level KL needs the same vocabulary",
            dir.display(),
            t.model.config.vocab_size,
            student_vocab
        );
    }
    Ok(t.model)
}

/// `curves.svg` (total loss and its components per step) and, when the run evaluated
/// periodically, `eval_curves.svg`. Returns the files written.
fn write_curves(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let metrics = out.join("metrics.jsonl");
    let m = read_metrics_jsonl(&metrics, "step", &[])?;
    let pick = |f: &dyn Fn(&str) -> bool| -> Vec<Series> {
        m.series.iter().filter(|s| f(&s.name) && !s.points.is_empty()).cloned().collect()
    };
    let mut written = Vec::new();
    let losses = pick(&|n| n == "loss" || n.starts_with("loss/"));
    if losses.is_empty() {
        tracing::warn!("{}: no loss values to plot", metrics.display());
        return Ok(written);
    }
    let p = out.join("curves.svg");
    write_svg(&p, &line_chart(&losses, &ChartOptions::new("Training loss", "optimizer step", "loss"))?)?;
    written.push(p);
    let evals = pick(&|n| matches!(n, "eval/accuracy" | "eval/pearson_gap" | "eval/spearman_gap"));
    if !evals.is_empty() {
        let p = out.join("eval_curves.svg");
        write_svg(&p, &line_chart(&evals, &ChartOptions::new("Held-out evaluation", "optimizer step", "value"))?)?;
        written.push(p);
    }
    Ok(written)
}

/// The last record of `metrics.jsonl` (`None` for an empty file).
fn last_metrics(path: &Path) -> anyhow::Result<Option<Map<String, Value>>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    match text.lines().rev().find(|l| !l.trim().is_empty()) {
        None => Ok(None),
        Some(l) => serde_json::from_str(l).with_context(|| format!("{}: unreadable last line", path.display())).map(Some),
    }
}
