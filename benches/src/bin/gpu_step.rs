//! GPU bench of the RM-Distiller training step (the GPU speed issue's anchor step):
//! `P` preference pairs (2P reward rows) + `P` teacher-response rows of length `L`,
//! margin-aware regression on the rewards + SFT on the teacher rows, AdamW update, on a
//! random-init Qwen2.5 shape; plus a scoring pass (forward of the reward rows only).
//!
//! `gpu_step [--shape 0.5b|1.5b] [--pairs 8] [--len 1024] [--steps 10] [--warmup 3]
//!  [--precision bf16|f32] [--compare]`
//! bf16 = bf16 compute on an f32 master copy (rmd-train's mixed precision). `--compare` first
//! runs one forward+backward with the cuBLAS fast path off and on (same weights and batch) and
//! prints the relative differences. `RMD_CUBLAS=0` times burn's own matmuls.
//! Prints ms/step (median over timed steps, device synchronised) and tokens/s. Peak memory is
//! read outside (nvidia-smi) by benches/gpu/run.sh.
//!
//! `--devices N` (N > 1): the same step data-parallel on GPUs 0..N (weak scaling: every GPU
//! runs its own `--pairs` pairs, so the global batch is N x pairs), gradients summed with
//! burn-collective (`rmd_train::parallel::sum_gradients`), every replica stepping AdamW; prints
//! ms/step, tokens/s in total and per GPU, and the time spent after the backward (all-reduce
//! + update). Compare tokens/s per GPU against `--devices 1`. No scoring pass in this mode.
//! `--one-gpu` puts all N replicas on GPU 0: a functional check of the collective path on a
//! single-GPU machine, not a scaling measurement.

use std::time::Instant;

use burn::backend::{Autodiff, Cuda};
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Tensor, TensorData};
use rmd_loss::generative::{sft_loss, ChunkConfig, LmInput, TokenTargets, IGNORE_INDEX};
use rmd_loss::{MarginRegression, PairBatch, RewardObjective};
use rmd_train::precision::compute_copy;
use rmd_model::{DecoderConfig, Family, HeadKind, ModelInput, PaddingSide, RewardModel, RewardModelConfig, TokenBatch};

type Inner = Cuda<f32, i32>;
type B = Autodiff<Inner>;

fn arg(name: &str, default: &str) -> String {
    let a: Vec<String> = std::env::args().collect();
    a.iter().position(|x| x == name).and_then(|i| a.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let shape = arg("--shape", "0.5b");
    let pairs: usize = arg("--pairs", "8").parse().unwrap();
    let len: usize = arg("--len", "1024").parse().unwrap();
    let steps: usize = arg("--steps", "10").parse().unwrap();
    let warmup: usize = arg("--warmup", "3").parse().unwrap();
    let precision = match arg("--precision", "bf16").as_str() {
        "bf16" => FloatDType::BF16,
        "f32" => FloatDType::F32,
        p => panic!("unknown precision {p}"),
    };
    let compare = std::env::args().any(|a| a == "--compare");
    let devices: usize = arg("--devices", "1").parse().unwrap();
    let one_gpu = std::env::args().any(|a| a == "--one-gpu");
    println!("cuBLAS fast path: {}", rmd_kernels::has_fast_matmul::<B>());
    let vocab = 151_936;
    let dec = match shape.as_str() {
        "0.5b" => DecoderConfig::preset(Family::Qwen2, vocab, 896, 4864, 24, 14, 2),
        "1.5b" => DecoderConfig::preset(Family::Qwen2, vocab, 1536, 8960, 28, 12, 2),
        s => panic!("unknown shape {s}"),
    };
    let device = Default::default();
    let t0 = Instant::now();
    let mut model = RewardModel::<B>::init(&RewardModelConfig::new(dec, HeadKind::Linear), 0, &device).unwrap();
    eprintln!("init {:.1}s", t0.elapsed().as_secs_f64());
    let mut optim = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0).init::<B, RewardModel<B>>();

    // Random token ids (never zeros: METHOD.md), full-length rows; LM rows: the first quarter is prompt.
    let rows = 3 * pairs;
    let mut s = 12345u64;
    let seqs: Vec<Vec<u32>> = (0..rows)
        .map(|_| {
            (0..len)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((s >> 33) % (vocab as u64 - 10) + 5) as u32
                })
                .collect()
        })
        .collect();
    let prompt_lens: Vec<usize> = (0..rows).map(|_| len / 4).collect();
    let batch = TokenBatch::new(&seqs, Some(&prompt_lens), 0, PaddingSide::Right).unwrap();
    let input = ModelInput::<B>::new(&batch, (0..2 * pairs).collect(), (2 * pairs..rows).collect(), &device).unwrap();
    let mut labels = vec![IGNORE_INDEX; pairs * len];
    for k in 0..pairs {
        for t in len / 4..len {
            labels[k * len + t] = seqs[2 * pairs + k][t] as i64;
        }
    }
    let targets = TokenTargets::from_labels(&labels, pairs, len).unwrap();
    let gap: Vec<f32> = (0..pairs).map(|i| 1.0 + (i % 5) as f32).collect();
    let zeros = vec![0.0f32; pairs];
    let objective = MarginRegression::default();
    let tokens = (rows * len) as f64;

    // One step's loss: forward on the compute copy (bf16) or the master weights (f32).
    let step_loss = |model: &RewardModel<B>| step_loss_on(model, &input, &targets, &gap, &zeros, &objective, precision, &device);

    if compare {
        // Same weights, same batch: plain burn matmuls vs cuBLAS, forward values and gradients.
        let mut runs = Vec::new();
        for fast in [false, true] {
            rmd_kernels::set_fast_path(fast);
            let (loss, r) = step_loss(&model);
            let g = loss.clone().backward();
            let q = model.backbone.layers[0].self_attn.q_proj.weight.grad(&g).unwrap();
            let e = model.backbone.embed_tokens.weight.grad(&g).unwrap();
            let v: Vec<f32> = loss.into_data().convert::<f32>().to_vec().unwrap();
            let r: Vec<f32> = r.into_data().convert::<f32>().to_vec().unwrap();
            let q: Vec<f32> = q.into_data().convert::<f32>().to_vec().unwrap();
            let e: Vec<f32> = e.into_data().convert::<f32>().to_vec().unwrap();
            runs.push((v[0], r, q, e));
        }
        rmd_kernels::set_fast_path(true);
        let rel = |a: &[f32], b: &[f32]| {
            let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
            a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
        };
        let nan = runs.iter().any(|(l, r, q, e)| !l.is_finite() || r.iter().chain(q).chain(e).any(|x| !x.is_finite()));
        let (p, f) = (&runs[0], &runs[1]);
        println!(
            "compare precision={precision:?}: loss plain {:.6} cublas {:.6} (rel {:.2e}); rewards max rel {:.2e}; grad layer0.q_proj max rel {:.2e}; grad embed max rel {:.2e}; non-finite: {nan}",
            p.0, f.0, ((p.0 - f.0) / p.0).abs(), rel(&f.1, &p.1), rel(&f.2, &p.2), rel(&f.3, &p.3)
        );
    }

    if devices > 1 {
        let label = format!("shape={shape} pairs/replica={pairs} len={len}{}", if one_gpu { " one-gpu" } else { "" });
        data_parallel(model, &batch, &targets, &gap, precision, devices, one_gpu, warmup, steps, tokens, &label);
        return;
    }

    // RMD_PHASE_SYNC=1: synchronise after the forward and the backward, so the phase split below
    // is device time (slightly slower steps: the pipeline drains twice).
    let phase_sync = std::env::var("RMD_PHASE_SYNC").is_ok_and(|v| v == "1");
    // RMD_STEP_PAUSE_MS=N: idle N ms before each step and after the last, so a kernel trace
    // (tools/cuda/trace) splits into steps at the gaps.
    let pause = std::time::Duration::from_millis(std::env::var("RMD_STEP_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0));
    let (mut times, mut host_times) = (Vec::new(), Vec::new());
    for step in 0..warmup + steps {
        B::sync(&device).unwrap();
        std::thread::sleep(pause);
        let t = Instant::now();
        let (loss, _) = step_loss(&model);
        if phase_sync {
            B::sync(&device).unwrap();
        }
        let t_fwd = t.elapsed().as_secs_f64();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        if phase_sync {
            B::sync(&device).unwrap();
        }
        let t_bwd = t.elapsed().as_secs_f64();
        model = optim.step(1e-5, model, grads);
        // Host time to record and launch the step; close to the step time = host-bound.
        let host = t.elapsed().as_secs_f64();
        B::sync(&device).unwrap();
        let dt = t.elapsed().as_secs_f64();
        eprintln!(
            "step {step}: {:.1} ms (host {:.1} ms: forward {:.1}, backward {:.1}, optimizer {:.1}; phases synced: {phase_sync})",
            dt * 1e3,
            host * 1e3,
            t_fwd * 1e3,
            (t_bwd - t_fwd) * 1e3,
            (host - t_bwd) * 1e3
        );
        if step >= warmup {
            times.push(dt);
            host_times.push(host);
        }
    }
    // The trace's last training step ends at a gap too, not merged with the scoring passes.
    std::thread::sleep(pause);
    let ms = median(times) * 1e3;
    let host_ms = median(host_times) * 1e3;
    println!(
        "train_step shape={shape} pairs={pairs} len={len} precision={precision:?}: {ms:.1} ms/step, {:.0} tokens/s (host enqueue {host_ms:.1} ms)",
        tokens / (ms / 1e3)
    );

    // Scoring pass: reward rows only, no graph.
    let eval = model.valid();
    let eval = compute_copy(&eval, precision, DType::F32).unwrap_or(eval);
    let score_input = ModelInput::<Inner>::rewards_only(&batch, &device).unwrap();
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        <Inner as Backend>::sync(&device).unwrap();
        let t = Instant::now();
        let r = eval.forward(&score_input).rewards;
        let _ = r.into_data();
        let dt = t.elapsed().as_secs_f64();
        if i >= warmup {
            times.push(dt);
        }
    }
    let ms = median(times) * 1e3;
    println!("score shape={shape} rows={rows} len={len}: {ms:.1} ms/pass, {:.0} tokens/s", tokens / (ms / 1e3));
}

/// One step's loss on one device: forward on the compute copy (bf16) or the master weights
/// (f32); margin regression on the rewards + SFT on the LM rows. Returns (loss, rewards).
#[allow(clippy::too_many_arguments)]
fn step_loss_on(
    model: &RewardModel<B>,
    input: &ModelInput<B>,
    targets: &TokenTargets,
    gap: &[f32],
    zeros: &[f32],
    objective: &MarginRegression,
    precision: FloatDType,
    device: &burn::tensor::Device<B>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let pairs = gap.len();
    let copy = compute_copy(model, precision, DType::F32);
    let m = copy.as_ref().unwrap_or(model);
    let out = m.forward(input);
    let r = out.rewards.cast(FloatDType::F32);
    let pb = PairBatch::new(r.clone().slice([0..pairs]), r.clone().slice([pairs..2 * pairs])).with_scores(
        Tensor::from_data(TensorData::new(gap.to_vec(), [pairs]), device),
        Tensor::from_data(TensorData::new(zeros.to_vec(), [pairs]), device),
    );
    let reward = objective.loss(&pb).unwrap().loss;
    let lm = LmInput::Hidden { hidden: out.lm_hidden.unwrap(), head_weight: m.lm_head_weight().unwrap() };
    let sft = sft_loss(&lm, targets, ChunkConfig { positions_per_chunk: 2048 }).unwrap();
    (reward + sft, r)
}

/// `--devices n`: one thread and one replica per GPU, each on its own copy of the batch; a
/// barrier starts and ends every timed step on all GPUs together.
#[allow(clippy::too_many_arguments)]
fn data_parallel(
    model: RewardModel<B>,
    batch: &TokenBatch,
    targets: &TokenTargets,
    gap: &[f32],
    precision: FloatDType,
    n: usize,
    one_gpu: bool,
    warmup: usize,
    steps: usize,
    tokens_per_gpu: f64,
    label: &str,
) {
    use burn::backend::cuda::CudaDevice;
    use burn::module::Module;
    use burn::tensor::backend::DeviceOps;
    use rmd_train::parallel::{sum_gradients, CollectiveGroup};

    let type_id = CudaDevice::default().id().type_id;
    let visible = <Inner as Backend>::device_count(type_id);
    if n > visible && !one_gpu {
        eprintln!("--devices {n}: only {visible} CUDA device(s) visible (--one-gpu runs them all on GPU 0)");
        std::process::exit(2);
    }
    let devices: Vec<CudaDevice> = (0..n).map(|index| CudaDevice { index: if one_gpu { 0 } else { index } }).collect();
    let group = CollectiveGroup::<B>::register(&devices).expect("burn-collective registration");
    let pairs = gap.len();
    let zeros = vec![0.0f32; pairs];
    let objective = MarginRegression::default();
    let barrier = std::sync::Barrier::new(n);
    // rank 0's (step time, time after the backward) per timed step
    let times: Vec<(f64, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(rank, device)| {
                let (model, barrier, zeros, objective) = (model.clone(), &barrier, &zeros, &objective);
                s.spawn(move || {
                    let mut model = model.fork(device);
                    let mut optim = AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.0).init::<B, RewardModel<B>>();
                    let rows = 3 * pairs;
                    let input = ModelInput::<B>::new(batch, (0..2 * pairs).collect(), (2 * pairs..rows).collect(), device).unwrap();
                    let mut times = Vec::new();
                    for step in 0..warmup + steps {
                        B::sync(device).unwrap();
                        barrier.wait();
                        let t = Instant::now();
                        let (loss, _) = step_loss_on(&model, &input, targets, gap, zeros, objective, precision, device);
                        let grads = GradientsParams::from_grads(loss.backward(), &model);
                        B::sync(device).unwrap();
                        let t_bwd = t.elapsed().as_secs_f64();
                        let grads = sum_gradients(rank, &model, grads, device).expect("gradient all-reduce");
                        model = optim.step(1e-5, model, grads);
                        B::sync(device).unwrap();
                        barrier.wait();
                        let dt = t.elapsed().as_secs_f64();
                        if rank == 0 {
                            eprintln!("step {step}: {:.1} ms ({:.1} ms after the backward)", dt * 1e3, (dt - t_bwd) * 1e3);
                            if step >= warmup {
                                times.push((dt, dt - t_bwd));
                            }
                        }
                    }
                    times
                })
            })
            .collect();
        let mut all: Vec<Vec<(f64, f64)>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        all.swap_remove(0)
    });
    drop(group);
    let ms = median(times.iter().map(|t| t.0).collect()) * 1e3;
    let sync_ms = median(times.iter().map(|t| t.1).collect()) * 1e3;
    let total = n as f64 * tokens_per_gpu / (ms / 1e3);
    println!(
        "train_step_dp {label} devices={n} precision={precision:?}: {ms:.1} ms/step ({sync_ms:.1} ms all-reduce + update), {total:.0} tokens/s total, {:.0} tokens/s per GPU",
        total / n as f64
    );
}
