//! Data-parallel training with burn-collective on the CPU: several replicas share the NdArray
//! device, each on its own thread. A run on N replicas must follow the single-device run (same
//! loss, components, tokens and gradient norm per step, up to float summation order), keep its
//! replicas identical, split batches that do not divide evenly, and resume exactly.

use std::sync::Mutex;

use burn::backend::{ndarray::NdArray, Autodiff};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor};
use rmd_core::{Conversation, PreferencePair};
use rmd_model::text::word_level::word_level_encoder;
use burn::optim::GradientsParams;
use rmd_model::{DecoderConfig, Family, HeadKind, ModelInput, PaddingSide, RewardModel, RewardModelConfig, TextEncoder, TokenBatch};
use rmd_train::parallel::{sum_gradients_in_buckets, CollectiveGroup};
use rmd_train::trainer::TokenSpec;
use rmd_train::*;

type B = Autodiff<NdArray>;

/// burn's local collective serves one group per process at a time: the tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const WORDS: &[&str] = &["what", "is", "the", "answer", "good", "bad", "fine", "poor", "it", "very", "a", "reply", "?", "."];

fn encoder() -> TextEncoder {
    word_level_encoder(WORDS.iter().copied(), true).unwrap()
}

/// Varied lengths (so replicas pad differently from the whole micro-batch) and teacher gaps.
fn pairs(n: usize) -> Vec<PreferencePair> {
    (0..n)
        .map(|i| {
            let strong = i % 2 == 0;
            let long = i % 3 == 0;
            let mut p = PreferencePair::new(
                format!("p{i}"),
                Conversation::from_user(if long { "what is the answer ? what is it ?" } else { "what is it ?" }),
                if strong { "a very good reply ." } else { "a fine reply ." },
                if strong { "a very bad reply ." } else { "a poor reply . it is a poor reply ." },
            );
            p.chosen_score = Some(if strong { 9.0 } else { 7.0 });
            p.rejected_score = Some(if strong { 3.0 } else { 4.0 } + (i % 4) as f64 * 0.25);
            p.teacher_response = Some(if long { "the answer is a good reply ." } else { "it is good ." }.into());
            p
        })
        .collect()
}

fn model(enc: &TextEncoder, seed: u64) -> RewardModel<B> {
    let vocab = enc.tokenizer().get_vocab_size(true);
    let dec = DecoderConfig::preset(Family::Qwen2, vocab, 16, 32, 1, 2, 1);
    RewardModel::init(&RewardModelConfig::new(dec, HeadKind::Linear), seed, &Default::default()).unwrap()
}

/// 20 pairs, 8 per step (2 micro-batches of 4): steps of 8, 8 and 4 pairs per epoch.
fn config() -> TrainConfig {
    let mut c = TrainConfig::default();
    c.optimizer.lr = 1e-3;
    c.optimizer.warmup_ratio = 0.1;
    c.optimizer.max_grad_norm = Some(0.5);
    c.pairs_per_micro_batch = 4;
    c.accumulation_steps = 2;
    c.epochs = 4;
    c.max_length = 32;
    c.progress_bar = false;
    c.weights = LossWeights { reward: 1.0, sft: 0.5, kl: 0.0 };
    c
}

fn spec() -> TokenSpec {
    TokenSpec { bos: Some(2), pad: 0 }
}

#[derive(Debug, Clone)]
struct Step {
    step: usize,
    loss: f64,
    grad_norm: f64,
    components: Vec<(String, f64)>,
    tokens: usize,
}

struct Run {
    curve: Vec<Step>,
    /// Rank 0's parameters after the run.
    params: Vec<f32>,
    /// Largest |difference| between any replica's parameters and rank 0's.
    replica_divergence: f32,
}

/// All float parameters of a model, in visiting order.
struct Flatten(Vec<f32>);

impl<Bk: Backend> ModuleVisitor<Bk> for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
        self.0.extend(param.val().into_data().convert::<f32>().to_vec::<f32>().unwrap());
    }
}

fn flatten(m: &RewardModel<B>) -> Vec<f32> {
    let mut f = Flatten(Vec::new());
    m.valid().visit(&mut f);
    f.0
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Trains `n_pairs` pairs on `devices` CPU replicas (stopping after `stop_after` steps if set,
/// as if killed) and drops the trainer before returning, which frees the collective group.
fn run(cfg: &TrainConfig, devices: usize, n_pairs: usize, out: &std::path::Path, stop_after: Option<usize>, teacher: bool) -> Run {
    let enc = encoder();
    let mut cfg = cfg.clone();
    cfg.devices = devices;
    let train = EncodedSet::encode(&pairs(n_pairs), &enc, true, cfg.weights.sft > 0.0 || cfg.weights.kl > 0.0).unwrap();
    let teacher = teacher.then(|| model(&enc, 11).valid());
    let devs = vec![burn::backend::ndarray::NdArrayDevice::default(); devices];
    let mut t = Trainer::<B>::with_devices(model(&enc, 7), cfg, spec(), train, None, teacher, out, devs).unwrap();
    let mut curve = Vec::new();
    t.fit(&mut |r| {
        curve.push(Step { step: r.step, loss: r.loss, grad_norm: r.grad_norm, components: r.components.clone(), tokens: r.tokens });
        if Some(r.step) == stop_after {
            StepControl::Stop
        } else {
            StepControl::Continue
        }
    })
    .unwrap();
    let replicas = t.replicas();
    assert_eq!(replicas.len(), devices);
    let params = flatten(replicas[0]);
    let replica_divergence = replicas[1..].iter().map(|m| max_abs_diff(&params, &flatten(m))).fold(0.0, f32::max);
    Run { curve, params, replica_divergence }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-3)
}

/// Largest relative difference of loss, grad norm and components between two curves; tokens
/// and component names must be equal.
fn curve_diff(a: &[Step], b: &[Step]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut worst: f64 = 0.0;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.step, y.step);
        assert_eq!(x.tokens, y.tokens, "step {}: tokens are summed over replicas", x.step);
        let names = |s: &Step| s.components.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(x), names(y), "step {}", x.step);
        worst = worst.max(rel(x.loss, y.loss)).max(rel(x.grad_norm, y.grad_norm));
        for (cx, cy) in x.components.iter().zip(&y.components) {
            worst = worst.max(rel(cx.1, cy.1));
        }
    }
    worst
}

/// [`curve_diff`] of the first step alone: nothing has been updated yet, so this is the pure
/// rounding difference of one sharded forward/backward and all-reduce.
fn first_step_diff(a: &[Step], b: &[Step]) -> f64 {
    curve_diff(&a[..1], &b[..1])
}

/// Single-device vs N-device: the same arithmetic up to summation order and padding (a shard
/// pads to its own longest row), so the curves agree to f32 rounding. Measured on x86-64
/// NdArray: step 1 differs by 4.5e-7 (2 replicas) / 6.5e-7 (3); over 9-12 AdamW steps the
/// worst loss/norm/component difference is 4.5e-7 (2) / 8.8e-6 (3) relative and parameters
/// differ by at most 8.5e-7 / 2.1e-6. The tolerances leave ~10x room for other platforms; a
/// wrong weighting (per device instead of per pair) or a missing all-reduce is off by >= 10%.
const STEP1_TOL: f64 = 1e-5;
const CURVE_TOL: f64 = 1e-4;
const PARAM_TOL: f32 = 1e-4;

#[test]
fn two_replicas_follow_the_single_device_curve() {
    let _g = serial();
    let cfg = config();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = run(&cfg, 1, 20, d1.path(), None, false);
    let two = run(&cfg, 2, 20, d2.path(), None, false);
    assert_eq!(one.curve.len(), 12, "3 steps per epoch x 4 epochs");
    // The clipping path is exercised (the norm broadcast from rank 0 sets the factor).
    assert!(one.curve.iter().any(|s| s.grad_norm > 0.5), "{:?}", one.curve);
    let init = flatten(&model(&encoder(), 7));
    assert!(max_abs_diff(&one.params, &init) > 1e-3, "the steps changed the model");
    let diff = curve_diff(&two.curve, &one.curve);
    let pdiff = max_abs_diff(&two.params, &one.params);
    eprintln!("2 replicas vs 1: curve max rel diff {diff:.3e} (step 1: {:.3e}), final params max abs diff {pdiff:.3e}", first_step_diff(&two.curve, &one.curve));
    assert!(first_step_diff(&two.curve, &one.curve) < STEP1_TOL);
    assert!(diff < CURVE_TOL, "curve differs by {diff:e}\n{:?}\n{:?}", two.curve, one.curve);
    assert!(pdiff < PARAM_TOL, "parameters differ by {pdiff:e}");
    // Every replica applied the same update from the same summed gradient.
    assert_eq!(two.replica_divergence, 0.0);
    // The metrics file is written once (rank 0), one line per step.
    let lines = std::fs::read_to_string(d2.path().join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 12);
}

#[test]
fn three_replicas_with_uneven_and_empty_shards() {
    let _g = serial();
    // 18 pairs, 8 per step: steps of 8, 8 and 2 pairs. Micro-batches of 4 split 2+1+1; the
    // last step's single micro-batch of 2 splits 1+1+0, so rank 2 has no data for that step
    // and contributes zero gradients (the parameter set is agreed across ranks first).
    let mut cfg = config();
    cfg.epochs = 3;
    cfg.weights = LossWeights { reward: 1.0, sft: 0.5, kl: 0.5 };
    let (d1, d3) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = run(&cfg, 1, 18, d1.path(), None, true);
    let three = run(&cfg, 3, 18, d3.path(), None, true);
    assert_eq!(one.curve.len(), 9);
    assert!(one.curve[0].components.iter().any(|c| c.0 == "kl"), "{:?}", one.curve[0]);
    let diff = curve_diff(&three.curve, &one.curve);
    let pdiff = max_abs_diff(&three.params, &one.params);
    eprintln!(
        "3 replicas vs 1 (uneven, with KL teacher replicas): curve max rel diff {diff:.3e} (step 1: {:.3e}), params max abs diff {pdiff:.3e}",
        first_step_diff(&three.curve, &one.curve)
    );
    assert!(first_step_diff(&three.curve, &one.curve) < STEP1_TOL);
    assert!(diff < CURVE_TOL, "curve differs by {diff:e}\n{:?}\n{:?}", three.curve, one.curve);
    assert!(pdiff < PARAM_TOL, "parameters differ by {pdiff:e}");
    assert_eq!(three.replica_divergence, 0.0);
}

#[test]
fn more_replicas_than_pairs_in_a_micro_batch() {
    let _g = serial();
    // One pair per micro-batch on two replicas: rank 1 never has data, yet every step must
    // equal the single-device one (its gradients are all zero-filled).
    let mut cfg = config();
    cfg.pairs_per_micro_batch = 1;
    cfg.accumulation_steps = 3;
    cfg.epochs = 1;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = run(&cfg, 1, 9, d1.path(), None, false);
    let two = run(&cfg, 2, 9, d2.path(), None, false);
    assert_eq!(one.curve.len(), 3);
    let diff = curve_diff(&two.curve, &one.curve);
    eprintln!("2 replicas, 1 pair per micro-batch vs 1: curve max rel diff {diff:.3e}");
    assert!(diff < CURVE_TOL, "curve differs by {diff:e}");
    assert_eq!(two.replica_divergence, 0.0);
}

#[test]
fn resumes_exactly_on_several_devices_and_on_another_count() {
    let _g = serial();
    let mut cfg = config();
    cfg.checkpoint_every = Some(2);
    let full_dir = tempfile::tempdir().unwrap();
    let full = run(&cfg, 2, 20, full_dir.path(), None, false);

    // Killed after step 5 (steps 1-4 checkpointed), resumed on the same two replicas.
    let dir = tempfile::tempdir().unwrap();
    let first = run(&cfg, 2, 20, dir.path(), Some(5), false);
    assert_eq!(first.curve.len(), 5);
    let rest = run(&cfg, 2, 20, dir.path(), None, false);
    assert_eq!(rest.curve.first().map(|s| s.step), Some(5), "resumes at the step after the checkpoint");
    let resumed: Vec<Step> = first.curve[..4].iter().chain(&rest.curve).cloned().collect();
    let diff = curve_diff(&resumed, &full.curve);
    eprintln!("resume on 2 replicas: curve max rel diff {diff:.3e}");
    assert!(diff <= 1e-6, "resume is exact up to checkpoint round trip: {diff:e}");
    assert_eq!(max_abs_diff(&rest.params, &full.params), 0.0);
    // Rank 0 checkpointed through the last step.
    let last = rmd_train::checkpoint::latest(dir.path()).unwrap().unwrap();
    assert_eq!(rmd_train::checkpoint::load_state(&last).unwrap().step, 12);

    // The device count is not part of the run's identity: the 2-replica checkpoint resumes
    // on 3 replicas and stays on the same trajectory (to summation order).
    let dir3 = tempfile::tempdir().unwrap();
    let first = run(&cfg, 2, 20, dir3.path(), Some(5), false);
    let rest = run(&cfg, 3, 20, dir3.path(), None, false);
    let resumed: Vec<Step> = first.curve[..4].iter().chain(&rest.curve).cloned().collect();
    let diff = curve_diff(&resumed, &full.curve);
    eprintln!("resume 2 -> 3 replicas: curve max rel diff {diff:.3e}");
    assert!(diff < CURVE_TOL, "{diff:e}");
}

#[test]
fn misconfigurations_are_refused() {
    let _g = serial();
    let enc = encoder();
    let train = || EncodedSet::encode(&pairs(8), &enc, true, true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cpu = burn::backend::ndarray::NdArrayDevice::default();

    // The device list and config.devices must agree.
    let mut cfg = config();
    cfg.devices = 2;
    let err = Trainer::<B>::new(model(&enc, 7), cfg.clone(), spec(), train(), None, None, dir.path(), cpu).err().unwrap();
    assert!(err.to_string().contains("config.devices = 2 but 1 device"), "{err}");
    cfg.devices = 0;
    let err = Trainer::<B>::with_devices(model(&enc, 7), cfg.clone(), spec(), train(), None, None, dir.path(), vec![]).err().unwrap();
    assert!(err.to_string().contains("devices must be >= 1"), "{err}");

    // The reference code's broadcasting bug couples all pairs of a micro-batch.
    cfg.devices = 2;
    cfg.objective = ObjectiveConfig::MarginMse { reference_broadcast: true };
    assert!(cfg.validate().unwrap_err().to_string().contains("reference_broadcast"));

    // One collective group per process: a second multi-device trainer waits for the first.
    let cfg = TrainConfig { devices: 2, ..config() };
    let d2 = tempfile::tempdir().unwrap();
    let first = Trainer::<B>::with_devices(model(&enc, 7), cfg.clone(), spec(), train(), None, None, dir.path(), vec![cpu; 2]).unwrap();
    let err = Trainer::<B>::with_devices(model(&enc, 7), cfg.clone(), spec(), train(), None, None, d2.path(), vec![cpu; 2]).err().unwrap();
    assert!(matches!(err, TrainError::Parallel(_)), "{err}");
    drop(first);
    // Once dropped, the group can be formed again and trains.
    let mut again = Trainer::<B>::with_devices(model(&enc, 7), cfg, spec(), train(), None, None, d2.path(), vec![cpu; 2]).unwrap();
    assert!(again.train_step().unwrap().loss.is_finite());
}

#[test]
fn dropout_masks_are_reproducible_on_several_replicas() {
    let _g = serial();
    // The MLP head's dropout draws from the backend's global RNG; replicas seed and draw under
    // a lock, so two identical runs log identical curves.
    let curve = || {
        let enc = encoder();
        let vocab = enc.tokenizer().get_vocab_size(true);
        let dec = DecoderConfig::preset(Family::Qwen2, vocab, 16, 32, 1, 2, 1);
        let head = HeadKind::Mlp { hidden: 8, dropout: 0.5 };
        let m = RewardModel::<B>::init(&RewardModelConfig::new(dec, head), 7, &Default::default()).unwrap();
        let mut cfg = config();
        cfg.devices = 2;
        cfg.epochs = 1;
        let train = EncodedSet::encode(&pairs(20), &enc, true, true).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cpu = burn::backend::ndarray::NdArrayDevice::default();
        let mut t = Trainer::<B>::with_devices(m, cfg, spec(), train, None, None, dir.path(), vec![cpu; 2]).unwrap();
        let mut c = Vec::new();
        t.fit(&mut |r| {
            c.push((r.loss, r.grad_norm));
            StepControl::Continue
        })
        .unwrap();
        c
    };
    let (a, b) = (curve(), curve());
    assert_eq!(a.len(), 3);
    assert_eq!(a, b);
}

/// Each parameter's gradient in `grads` (visiting order), `None` where it has none.
struct GradList<'a>(&'a GradientsParams, Vec<Option<Vec<f32>>>);

impl ModuleVisitor<B> for GradList<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.1.push(self.0.get::<NdArray, D>(param.id).map(|g| g.into_data().to_vec::<f32>().unwrap()));
    }
}

fn grad_list(m: &RewardModel<B>, g: &GradientsParams) -> Vec<Option<Vec<f32>>> {
    let mut v = GradList(g, Vec::new());
    m.visit(&mut v);
    v.1
}

#[test]
fn bucketed_all_reduce_returns_the_exact_sum_on_every_rank() {
    let _g = serial();
    let enc = encoder();
    let cpu = burn::backend::ndarray::NdArrayDevice::default();
    let m = model(&enc, 7);
    let grads_of = |m: &RewardModel<B>, seqs: &[Vec<u32>]| {
        let batch = TokenBatch::new(seqs, None, 0, PaddingSide::Right).unwrap();
        let input = ModelInput::<B>::new(&batch, (0..seqs.len()).collect(), Vec::new(), &cpu).unwrap();
        let r = m.forward(&input).rewards;
        GradientsParams::from_grads((r.clone() * r).sum().backward(), m)
    };
    let (a, b) = (vec![vec![2, 5, 6, 7], vec![2, 8, 9]], vec![vec![2, 11, 12, 13, 14]]);
    // Bucket sizes: one parameter per bucket, several per bucket (with parameters larger than
    // a bucket), everything in one bucket; and a rank with no gradients at all.
    for (bucket, rank1_empty) in [(1, false), (300, false), (usize::MAX, false), (300, true)] {
        let group = CollectiveGroup::<B>::register(&[cpu, cpu]).unwrap();
        let (m0, m1) = (m.clone().fork(&cpu), m.clone().fork(&cpu));
        let ga = grads_of(&m0, &a);
        let gb = if rank1_empty { GradientsParams::new() } else { grads_of(&m1, &b) };
        let (la, lb) = (grad_list(&m0, &ga), grad_list(&m1, &gb));
        let expected: Vec<Option<Vec<f32>>> = la
            .iter()
            .zip(&lb)
            .map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => Some(x.iter().zip(y).map(|(p, q)| p + q).collect()),
                (Some(x), None) | (None, Some(x)) => Some(x.clone()),
                (None, None) => None,
            })
            .collect();
        assert!(expected.iter().filter(|g| g.is_some()).count() > 5);
        let (s0, s1) = std::thread::scope(|s| {
            let h = s.spawn(|| sum_gradients_in_buckets(1, &m1, gb, &cpu, bucket).unwrap());
            let s0 = sum_gradients_in_buckets(0, &m0, ga, &cpu, bucket).unwrap();
            (s0, h.join().unwrap())
        });
        // Two addends: the sum is exact whichever rank's tensor the tree adds to.
        assert_eq!(grad_list(&m0, &s0), expected, "bucket {bucket}, rank 1 empty: {rank1_empty}");
        assert_eq!(grad_list(&m1, &s1), expected, "bucket {bucket}, rank 1 empty: {rank1_empty}");
        drop(group);
    }
}
