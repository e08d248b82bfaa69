//! GPU checks of the cuBLAS fast path (run on a CUDA machine: `cargo test -p rmd-kernels
//! --features cuda`). Values and gradients against f64 host references on fresh random inputs,
//! in f32 and bf16, for every operand layout the model produces; attention and the embedding
//! against burn's own.
#![cfg(feature = "cuda")]

mod common;

use burn::backend::{Autodiff, Cuda};
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Distribution, FloatDType, Int, Tensor, TensorData};

type F = Cuda<f32, i32>;
type B = Autodiff<F>;

fn host<const D: usize>(t: &Tensor<B, D>) -> Vec<f64> {
    t.to_data().convert::<f64>().to_vec().unwrap()
}

/// Row-major `[batch, m, k] x [batch, k, n]` on the host in f64.
fn host_matmul(a: &[f64], b: &[f64], batch: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; batch * m * n];
    for p in 0..batch {
        for i in 0..m {
            for l in 0..k {
                let x = a[(p * m + i) * k + l];
                for j in 0..n {
                    c[(p * m + i) * n + j] += x * b[(p * k + l) * n + j];
                }
            }
        }
    }
    c
}

fn transpose_last(x: &[f64], batch: usize, r: usize, c: usize) -> Vec<f64> {
    let mut t = vec![0.0; x.len()];
    for p in 0..batch {
        for i in 0..r {
            for j in 0..c {
                t[(p * c + j) * r + i] = x[(p * r + i) * c + j];
            }
        }
    }
    t
}

fn max_rel(got: &[f64], want: &[f64]) -> f64 {
    assert!(got.iter().all(|x| x.is_finite()), "non-finite values");
    let scale = want.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-12);
    got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
}

/// `a · b` (b given as stored, optionally used transposed) with gradients, vs the host.
fn check(batch: usize, m: usize, k: usize, n: usize, b_transposed: bool, dtype: FloatDType, tol: f64) {
    assert!(rmd_kernels::has_fast_matmul::<B>(), "cuBLAS path must be active on this machine");
    let device = Default::default();
    let a = Tensor::<B, 3>::random([batch, m, k], Distribution::Normal(0.0, 1.0), &device).cast(dtype);
    let stored = if b_transposed { [batch, n, k] } else { [batch, k, n] };
    let b = Tensor::<B, 3>::random(stored, Distribution::Normal(0.0, 1.0), &device).cast(dtype);
    let (a, b) = (a.require_grad(), b.require_grad());
    let b_used = if b_transposed { b.clone().swap_dims(1, 2) } else { b.clone() };
    let c = rmd_kernels::matmul(a.clone(), b_used);
    assert_eq!(c.dtype(), DType::from(dtype));
    let w = Tensor::<B, 3>::random([batch, m, n], Distribution::Normal(0.0, 1.0), &device).cast(dtype);
    let grads = (c.clone().cast(FloatDType::F32) * w.clone().cast(FloatDType::F32)).sum().backward();

    let (ha, hb_stored, hw) = (host(&a), host(&b), host(&w));
    let hb = if b_transposed { transpose_last(&hb_stored, batch, n, k) } else { hb_stored };
    let want = host_matmul(&ha, &hb, batch, m, k, n);
    let rel = max_rel(&host(&c), &want);
    assert!(rel < tol, "C {batch}x{m}x{k}x{n} bT={b_transposed} {dtype:?}: rel {rel:.2e}");
    // dA = W·Bᵀ, dB = Aᵀ·W (then stored layout for b).
    let da = host_matmul(&hw, &transpose_last(&hb, batch, k, n), batch, m, n, k);
    let db = host_matmul(&transpose_last(&ha, batch, m, k), &hw, batch, k, m, n);
    let db = if b_transposed { transpose_last(&db, batch, k, n) } else { db };
    let (ga, gb) = (a.grad(&grads).unwrap(), b.grad(&grads).unwrap());
    let ga: Vec<f64> = ga.to_data().convert::<f64>().to_vec().unwrap();
    let gb: Vec<f64> = gb.to_data().convert::<f64>().to_vec().unwrap();
    let (ra, rb) = (max_rel(&ga, &da), max_rel(&gb, &db));
    assert!(ra < tol && rb < tol, "grads {batch}x{m}x{k}x{n} bT={b_transposed} {dtype:?}: dA {ra:.2e} dB {rb:.2e}");
    println!("{batch}x{m}x{k}x{n} bT={b_transposed} {dtype:?}: C {rel:.2e} dA {ra:.2e} dB {rb:.2e}");
}

#[test]
fn matmul_values_and_gradients_match_the_host() {
    for dtype in [FloatDType::F32, FloatDType::BF16] {
        // bf16 inputs and outputs round to 8 bits of mantissa: 2^-8 relative per element.
        let tol = if dtype == FloatDType::F32 { 1e-5 } else { 1.5e-2 };
        check(1, 37, 64, 96, false, dtype, tol); // a Linear: [rows·len, in] x [in, out]
        check(1, 50, 64, 131, true, dtype, tol); // the LM head: h · Wᵀ
        check(6, 17, 8, 17, true, dtype, tol); // attention scores q · kᵀ
        check(6, 17, 17, 8, false, dtype, tol); // attention context p · v
        check(2, 1, 5, 3, false, dtype, tol); // single-row matrices
    }
}

#[test]
fn linear_folds_leading_dims_and_adds_bias() {
    let device = Default::default();
    let x = Tensor::<F, 3>::random([3, 11, 24], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<F, 2>::random([24, 40], Distribution::Normal(0.0, 1.0), &device);
    let b = Tensor::<F, 1>::random([40], Distribution::Normal(0.0, 1.0), &device);
    let fast: Vec<f64> = rmd_kernels::linear(x.clone(), w.clone(), Some(b.clone())).to_data().convert::<f64>().to_vec().unwrap();
    let (hx, hw, hb): (Vec<f64>, Vec<f64>, Vec<f64>) = (
        x.to_data().convert::<f64>().to_vec().unwrap(),
        w.to_data().convert::<f64>().to_vec().unwrap(),
        b.to_data().convert::<f64>().to_vec().unwrap(),
    );
    let mut want = host_matmul(&hx, &hw, 1, 33, 24, 40);
    for (i, v) in want.iter_mut().enumerate() {
        *v += hb[i % 40];
    }
    let rel = max_rel(&fast, &want);
    assert!(rel < 1e-5, "linear rel {rel:.2e}");
}

#[test]
fn fast_attention_matches_burn_attention_with_gradients() {
    let device = Default::default();
    let (rows, heads, len, d) = (2, 4, 33, 16);
    let mk = || Tensor::<B, 4>::random([rows, heads, len, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let (q, k, v) = (mk(), mk(), mk());
    let m = common::padded_causal_mask(rows, heads, len, 5);
    let mask = Tensor::<B, 4, Bool>::from_data(TensorData::new(m, [rows, heads, len, len]), &device);
    let w = Tensor::<B, 4>::random([rows, heads, len, d], Distribution::Normal(0.0, 1.0), &device);
    let fast = rmd_kernels::attention(q.clone(), k.clone(), v.clone(), mask.clone(), 0.25);
    let opts = AttentionModuleOptions { scale: Some(0.25), softcap: None, is_causal: false };
    let plain = burn_attention(q.clone(), k.clone(), v.clone(), Some(mask), None, opts);
    let rel = max_rel(&host(&fast), &host(&plain));
    // burn's own CUDA f32 matmul is not bit-faithful f32 (see docs/benchmarks.md), hence 1e-3.
    assert!(rel < 1e-3, "attention values rel {rel:.2e}");
    let g1 = (fast * w.clone()).sum().backward();
    let g2 = (plain * w).sum().backward();
    for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
        let a: Vec<f64> = t.grad(&g1).unwrap().to_data().convert::<f64>().to_vec().unwrap();
        let b: Vec<f64> = t.grad(&g2).unwrap().to_data().convert::<f64>().to_vec().unwrap();
        let rel = max_rel(&a, &b);
        assert!(rel < 1e-3, "grad {name} rel {rel:.2e}");
        println!("attention grad {name}: rel {rel:.2e}");
    }
}

/// bf16 inputs through the training nodes vs the plain f32 formulas on the same (upcast) values.
fn bf16_pair<const D: usize>(shape: [usize; D]) -> (Tensor<B, D>, Tensor<B, D>) {
    let device = Default::default();
    let data = Tensor::<B, D>::random(shape, Distribution::Normal(0.0, 1.0), &device).cast(FloatDType::BF16).into_data();
    let x32 = Tensor::<B, D>::from_data(data.clone().convert::<f32>(), &device).require_grad();
    // `from_data` alone would store the values in the device's default dtype (f32).
    let x = Tensor::<B, D>::from_data(data, (&device, DType::BF16)).require_grad();
    assert_eq!(x.dtype(), DType::BF16);
    (x, x32)
}

fn grad_f64<const D: usize>(t: &Tensor<B, D>, g: &<B as burn::tensor::backend::AutodiffBackend>::Gradients) -> Vec<f64> {
    t.grad(g).unwrap().to_data().convert::<f64>().to_vec().unwrap()
}

/// bf16 attention as the model calls it (the grouped-products node; the flash kernels for head
/// dims 64 and 128 when run with RMD_KERNELS=1) vs burn's f32 attention on the same values; lengths not multiples of the 64-wide
/// tiles, a left-padded row with fully masked queries.
#[test]
fn grouped_attention_bf16_matches_f32_reference() {
    check_grouped_bf16(3, 14, 2, 96, 64, 17);
    check_grouped_bf16(2, 12, 2, 130, 128, 5);
    check_grouped_bf16(1, 4, 4, 64, 64, 0);
}

fn check_grouped_bf16(rows: usize, heads: usize, kvh: usize, len: usize, d: usize, pad: usize) {
    println!("rows {rows} heads {heads}/{kvh} len {len} d {d} pad {pad}");
    let (q, q32) = bf16_pair([rows, heads, len, d]);
    let (k, k32) = bf16_pair([rows, kvh, len, d]);
    let (v, v32) = bf16_pair([rows, kvh, len, d]);
    let m = common::padded_causal_mask(rows, heads, len, pad);
    let mask = Tensor::<B, 4, Bool>::from_data(TensorData::new(m, [rows, heads, len, len]), &Default::default());
    let scale = 1.0 / (d as f64).sqrt();
    let fast = rmd_kernels::attention(q.clone(), k.clone(), v.clone(), mask.clone(), scale);
    assert_eq!(fast.dtype(), DType::BF16);
    let opts = AttentionModuleOptions { scale: Some(scale), softcap: None, is_causal: false };
    let n_rep = heads / kvh;
    let reference = burn_attention(q32.clone(), rmd_kernels::repeat_kv(k32.clone(), n_rep), rmd_kernels::repeat_kv(v32.clone(), n_rep), Some(mask), None, opts);
    let rel = max_rel(&host(&fast), &host(&reference));
    println!("grouped attention bf16 values: rel {rel:.2e}");
    assert!(rel < 2e-2, "values rel {rel:.2e}");
    let w = Tensor::<B, 4>::random([rows, heads, len, d], Distribution::Normal(0.0, 1.0), &Default::default());
    let g1 = (fast.cast(FloatDType::F32) * w.clone()).sum().backward();
    let g2 = (reference * w).sum().backward();
    for (name, a, b) in [("q", &q, &q32), ("k", &k, &k32), ("v", &v, &v32)] {
        let rel = max_rel(&grad_f64(a, &g1), &grad_f64(b, &g2));
        println!("grouped attention bf16 grad {name}: rel {rel:.2e}");
        assert!(rel < 3e-2, "grad {name} rel {rel:.2e}");
    }
}

#[test]
fn swiglu_and_rms_norm_nodes_bf16_match_f32_reference() {
    let (gate, gate32) = bf16_pair([4, 50, 256]);
    let (up, up32) = bf16_pair([4, 50, 256]);
    let fast = rmd_kernels::swiglu(gate.clone(), up.clone());
    let reference = burn::tensor::activation::silu(gate32.clone()) * up32.clone();
    let rel = max_rel(&host(&fast), &host(&reference));
    println!("swiglu bf16 values: rel {rel:.2e}");
    assert!(rel < 1e-2);
    let w = Tensor::<B, 3>::random([4, 50, 256], Distribution::Normal(0.0, 1.0), &Default::default());
    let g1 = (fast.cast(FloatDType::F32) * w.clone()).sum().backward();
    let g2 = (reference * w.clone()).sum().backward();
    for (name, a, b) in [("gate", &gate, &gate32), ("up", &up, &up32)] {
        let rel = max_rel(&grad_f64(a, &g1), &grad_f64(b, &g2));
        println!("swiglu bf16 grad {name}: rel {rel:.2e}");
        assert!(rel < 1e-2, "grad {name} rel {rel:.2e}");
    }

    let (x, x32) = bf16_pair([4, 50, 256]);
    let (gamma, gamma32) = bf16_pair([256]);
    let fast = rmd_kernels::rms_norm(x.clone(), gamma.clone(), 1e-6);
    let r = (x32.clone().square().mean_dim(2) + 1e-6).sqrt();
    let reference = x32.clone() / r * gamma32.clone().unsqueeze::<3>();
    let rel = max_rel(&host(&fast), &host(&reference));
    println!("rms_norm bf16 values: rel {rel:.2e}");
    assert!(rel < 1e-2);
    let g1 = (fast.cast(FloatDType::F32) * w.clone()).sum().backward();
    let g2 = (reference * w).sum().backward();
    let grads = [
        ("x", grad_f64(&x, &g1), grad_f64(&x32, &g2)),
        ("gamma", grad_f64(&gamma, &g1), grad_f64(&gamma32, &g2)),
    ];
    for (name, a, b) in grads {
        let rel = max_rel(&a, &b);
        println!("rms_norm bf16 grad {name}: rel {rel:.2e}");
        assert!(rel < 1e-2, "grad {name} rel {rel:.2e}");
    }
}

/// The embedding (burn's gather, our scatter-add kernel for the weight gradient) vs burn's own
/// `embedding` (the plain path, called directly rather than by switching the process-wide fast
/// path off under the other tests) and an f64 host sum, with ids repeated ~20 times each.
#[test]
fn embedding_fast_path_matches_plain_path() {
    // hidden 96: 16-byte loads and 4-wide atomics; 90: column by column.
    for (vocab, hidden, id_dtype) in [(1000, 96, DType::I32), (1000, 90, DType::I32), (300, 96, DType::I64)] {
        for dtype in [FloatDType::BF16, FloatDType::F32] {
            check_embedding(vocab, hidden, id_dtype, dtype);
        }
    }
}

fn check_embedding(vocab: usize, hidden: usize, id_dtype: DType, dtype: FloatDType) {
    assert!(rmd_kernels::fast_path_enabled());
    let device = Default::default();
    let (rows, len) = (6, 200);
    // Most tokens from 50 ids (17 to 25 repeats each), every 10th anywhere in the vocabulary.
    let ids_host: Vec<i64> = (0..rows * len).map(|i| if i % 10 == 9 { (i * 7919 % vocab) as i64 } else { ((i * 31 + i / 13) % 50) as i64 }).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids_host.clone(), [rows, len]), (&device, id_dtype));
    assert_eq!(ids.dtype(), id_dtype);
    // A leaf stored in `dtype` (see bf16_pair).
    let data = Tensor::<B, 2>::random([vocab, hidden], Distribution::Normal(0.0, 1.0), &device).cast(dtype).into_data();
    let weight = Tensor::<B, 2>::from_data(data, (&device, DType::from(dtype))).require_grad();
    assert_eq!(weight.dtype(), DType::from(dtype));
    let fast = rmd_kernels::embedding(weight.clone(), ids.clone());
    let plain = burn::tensor::module::embedding(weight.clone(), ids);
    assert_eq!(fast.dtype(), DType::from(dtype));
    assert_eq!(host(&fast), host(&plain), "forward {dtype:?} {id_dtype:?}");

    let w = Tensor::<B, 3>::random([rows, len, hidden], Distribution::Normal(0.0, 1.0), &device);
    let g1 = (fast.cast(FloatDType::F32) * w.clone()).sum().backward();
    let g2 = (plain.cast(FloatDType::F32) * w.clone()).sum().backward();
    let (ga, gb) = (grad_f64(&weight, &g1), grad_f64(&weight, &g2));
    // The output gradient reaches the node in the weight's dtype.
    let wv = host(&w.cast(dtype));
    let mut want = vec![0.0; vocab * hidden];
    for (t, &id) in ids_host.iter().enumerate() {
        for c in 0..hidden {
            want[id as usize * hidden + c] += wv[t * hidden + c];
        }
    }
    // Ours sums in f32 and rounds once; burn's plain path sums in the weight's dtype.
    let tol = if dtype == FloatDType::F32 { 1e-5 } else { 1e-2 };
    let (host_rel, plain_rel) = (max_rel(&ga, &want), max_rel(&ga, &gb));
    println!("embedding {vocab}x{hidden} {dtype:?} {id_dtype:?}: grad vs host {host_rel:.2e}, vs plain {plain_rel:.2e}");
    assert!(host_rel < tol, "grad vs host {host_rel:.2e}");
    assert!(plain_rel < 3.0 * tol, "grad vs plain {plain_rel:.2e}");
}

/// SwiGLU through swiglu.cu (`Autodiff<Cuda>`, and the inference forward on `Cuda`) vs an f64
/// host reference on the same bf16 / f32 values: the output and both gradients (random upstream
/// gradient). Shapes of whole 8-element groups and with a partial last group, a gate that is a
/// transposed view (copied to contiguous first), gate values up to ±30 and a few far beyond
/// (sigmoid saturated: no NaN).
#[test]
fn swiglu_fast_path_matches_formula() {
    for (shape, transposed) in [([2, 5, 1000], false), ([3, 7, 13], false), ([1, 3, 4864], false), ([2, 6, 40], true)] {
        for dtype in [DType::BF16, DType::F32] {
            check_swiglu(shape, transposed, dtype);
        }
    }
}

/// A leaf of `shape` stored in `dtype` with (about) these values.
fn leaf3(values: Vec<f32>, shape: [usize; 3], dtype: DType) -> Tensor<B, 3> {
    let data = TensorData::new(values, shape).convert_dtype(dtype);
    let t = Tensor::<B, 3>::from_data(data, (&Default::default(), dtype)).require_grad();
    assert_eq!(t.dtype(), dtype);
    t
}

fn check_swiglu(shape: [usize; 3], transposed: bool, dtype: DType) {
    assert!(rmd_kernels::fast_path_enabled());
    let device = Default::default();
    let [b, r, c] = shape;
    let n = b * r * c;
    let normal = |scale: f64| -> Vec<f32> { host(&Tensor::<B, 1>::random([n], Distribution::Normal(0.0, scale), &device)).iter().map(|&x| x as f32).collect() };
    let mut a = normal(3.0);
    for (i, x) in a.iter_mut().enumerate() {
        match i % 41 {
            0..=5 => *x = (*x * 5.0).clamp(-30.0, 30.0),
            6 => *x = 30.0,
            7 => *x = -30.0,
            8 => *x = 100.0,
            9 => *x = -100.0,
            10 => *x = -1e4,
            11 => *x = 0.0,
            _ => {}
        }
    }
    // The gate leaf is stored `[b, c, r]` when `transposed` (its values read in that order).
    let gate_leaf = leaf3(a, if transposed { [b, c, r] } else { shape }, dtype);
    let gate = if transposed { gate_leaf.clone().swap_dims(1, 2) } else { gate_leaf.clone() };
    let up = leaf3(normal(1.0), shape, dtype);
    let out = rmd_kernels::swiglu(gate.clone(), up.clone());
    assert_eq!(out.dtype(), dtype);
    assert_eq!(out.dims(), shape);
    // The upstream gradient reaches the node in the output's dtype (the cast's backward).
    let w = Tensor::<B, 3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let grads = (out.clone().cast(FloatDType::F32) * w.clone()).sum().backward();

    let (ha, hb, hg) = (host(&gate), host(&up), host(&w.cast(dtype)));
    let (mut want, mut want_da, mut want_db) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let s = 1.0 / (1.0 + (-ha[i]).exp());
        want[i] = ha[i] * s * hb[i];
        want_da[i] = hg[i] * hb[i] * s * (1.0 + ha[i] * (1.0 - s));
        want_db[i] = hg[i] * ha[i] * s;
    }
    let tol = if dtype == DType::BF16 { 1e-2 } else { 1e-5 };
    let rel = max_rel(&host(&out), &want);
    println!("swiglu {shape:?} transposed={transposed} {dtype:?}: values rel {rel:.2e}");
    assert!(rel < tol, "values rel {rel:.2e}");
    // Inference (`Cuda`, no autodiff): the same forward kernel.
    let plain = rmd_kernels::swiglu(gate.clone().inner(), up.clone().inner());
    assert_eq!(plain.dtype(), dtype);
    assert_eq!(plain.to_data().convert::<f64>().to_vec::<f64>().unwrap(), host(&out), "inference forward");

    let da = grad_f64(&gate_leaf, &grads);
    let want_da = if transposed { transpose_last(&want_da, b, r, c) } else { want_da };
    for (name, got, want) in [("gate", da, want_da), ("up", grad_f64(&up, &grads), want_db)] {
        let rel = max_rel(&got, &want);
        println!("swiglu {shape:?} transposed={transposed} {dtype:?}: grad {name} rel {rel:.2e}");
        assert!(rel < tol, "grad {name} rel {rel:.2e}");
    }
}

/// The RMSNorm kernels' other paths: a width that is not a multiple of 8 (column by column) and
/// an f32 weight, over enough rows for several backward blocks (each sums its rows' weight
/// gradient into one partial row), vs the f32 formula on the same values.
#[test]
fn rms_norm_kernels_column_path_and_f32_weight() {
    for (n, f32_weight) in [(45, false), (45, true), (96, true)] {
        let (x, x32) = bf16_pair([3, 70, n]);
        let (gamma_bf, gamma32) = bf16_pair([n]);
        let gamma = if f32_weight { Tensor::<B, 1>::from_data(gamma32.to_data(), &Default::default()).require_grad() } else { gamma_bf };
        let fast = rmd_kernels::rms_norm(x.clone(), gamma.clone(), 1e-6);
        assert_eq!(fast.dtype(), DType::BF16);
        let r = (x32.clone().square().mean_dim(2) + 1e-6).sqrt();
        let reference = x32.clone() / r * gamma32.clone().unsqueeze::<3>();
        let rel = max_rel(&host(&fast), &host(&reference));
        println!("rms_norm n {n} f32 weight {f32_weight}: values rel {rel:.2e}");
        assert!(rel < 1e-2);
        let w = Tensor::<B, 3>::random([3, 70, n], Distribution::Normal(0.0, 1.0), &Default::default());
        let g1 = (fast.cast(FloatDType::F32) * w.clone()).sum().backward();
        let g2 = (reference * w).sum().backward();
        for (name, a, b) in [("x", grad_f64(&x, &g1), grad_f64(&x32, &g2)), ("gamma", grad_f64(&gamma, &g1), grad_f64(&gamma32, &g2))] {
            let rel = max_rel(&a, &b);
            println!("rms_norm n {n} f32 weight {f32_weight}: grad {name} rel {rel:.2e}");
            assert!(rel < 1e-2, "grad {name} rel {rel:.2e}");
        }
    }
}

/// `linear`'s bias gradient (a one-row GEMM on this backend) vs the host column sum of the
/// output gradient, f32 and bf16.
#[test]
fn linear_bias_gradient_is_the_column_sum() {
    let device = Default::default();
    for dtype in [FloatDType::F32, FloatDType::BF16] {
        let x = Tensor::<B, 3>::random([3, 111, 24], Distribution::Normal(0.0, 1.0), &device).cast(dtype).require_grad();
        let w = Tensor::<B, 2>::random([24, 40], Distribution::Normal(0.0, 1.0), &device).cast(dtype).require_grad();
        let b = Tensor::<B, 1>::random([40], Distribution::Normal(0.0, 1.0), &device).cast(dtype).require_grad();
        let up = Tensor::<B, 3>::random([3, 111, 40], Distribution::Normal(0.0, 1.0), &device);
        let y = rmd_kernels::linear(x, w, Some(b.clone()));
        let g = (y.cast(FloatDType::F32) * up.clone()).sum().backward();
        let got = grad_f64(&b, &g);
        let hu = host(&up);
        let want: Vec<f64> = (0..40).map(|c| (0..333).map(|r| hu[r * 40 + c]).sum()).collect();
        let rel = max_rel(&got, &want);
        println!("linear bias grad {dtype:?}: rel {rel:.2e}");
        assert!(rel < if dtype == FloatDType::F32 { 1e-5 } else { 1e-2 }, "bias grad rel {rel:.2e}");
    }
}

/// The rotary kernel on the model's operand (a heads <-> sequence view of a projection) vs the
/// host formula on the same bf16 values with bf16-rounded tables, values and input gradient.
#[test]
fn rotary_kernel_matches_host_formula() {
    let device = Default::default();
    let (rows, len, heads, d) = (2, 37, 3, 64);
    let (x, _) = bf16_pair([rows, len, heads, d]);
    let pos = Tensor::<B, 4>::random([rows, 1, len, d], Distribution::Uniform(0.0, 50.0), &device);
    let (cos, sin) = (pos.clone().cos(), pos.sin());
    let y = rmd_kernels::rotary(x.clone().swap_dims(1, 2), cos.clone(), sin.clone());
    assert_eq!(y.dtype(), DType::BF16);
    let up = Tensor::<B, 4>::random([rows, heads, len, d], Distribution::Normal(0.0, 1.0), &device);
    let g = (y.clone().cast(FloatDType::F32) * up.clone()).sum().backward();
    // The kernel rounds the tables to bf16, as the plain path's cast does.
    let (hx, hu) = (host(&x), host(&up));
    let (hc, hs) = (host(&cos.cast(FloatDType::BF16)), host(&sin.cast(FloatDType::BF16)));
    let half = d / 2;
    let (mut want, mut want_dx) = (vec![0.0; hx.len()], vec![0.0; hx.len()]);
    for r in 0..rows {
        for h in 0..heads {
            for i in 0..len {
                let xo = ((r * len + i) * heads + h) * d; // x is [rows, len, heads, d]
                let yo = ((r * heads + h) * len + i) * d; // y, up: [rows, heads, len, d]
                let t = (r * len + i) * d;
                for c in 0..d {
                    let rot = if c < half { -hx[xo + c + half] } else { hx[xo + c - half] };
                    want[yo + c] = hx[xo + c] * hc[t + c] + rot * hs[t + c];
                    // d/dx of sum(up * y): up * cos plus the rotation's transpose of up * sin.
                    let back = if c < half { hu[yo + c + half] * hs[t + c + half] } else { -hu[yo + c - half] * hs[t + c - half] };
                    want_dx[xo + c] = hu[yo + c] * hc[t + c] + back;
                }
            }
        }
    }
    let rel = max_rel(&host(&y), &want);
    let rel_dx = max_rel(&grad_f64(&x, &g), &want_dx);
    println!("rotary bf16: values rel {rel:.2e}, grad rel {rel_dx:.2e}");
    assert!(rel < 1e-2 && rel_dx < 1e-2, "rotary values {rel:.2e} grad {rel_dx:.2e}");
}
