//! CPU checks of the pieces of the fast path that have a CPU equivalent: the explicit (grouped)
//! attention the cuBLAS path runs (values and gradients against burn's `attention`, including fully
//! masked rows), and the embedding entry point against `burn::nn::Embedding`. The GEMM argument
//! mapping is tested in `src/layout.rs`; cuBLAS and the embedding kernel in tests/cuda.rs on a GPU.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::nn::EmbeddingConfig;
use burn::tensor::{Bool, Distribution, Int, Tensor, TensorData};
use rmd_kernels::grouped_attention;

type B = Autodiff<NdArray<f32>>;

fn max_rel(a: &Tensor<B, 4>, b: &Tensor<B, 4>) -> f32 {
    let a: Vec<f32> = a.to_data().to_vec().unwrap();
    let b: Vec<f32> = b.to_data().to_vec().unwrap();
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
}

#[test]
fn explicit_attention_matches_burn_with_padding_rows() {
    let device = Default::default();
    let (rows, heads, len, d) = (2, 3, 6, 4);
    let mk = || Tensor::<B, 4>::random([rows, heads, len, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let (q, k, v) = (mk(), mk(), mk());
    // Row 0: causal. Row 1: left padding of 2 (keys 0..2 masked), and query rows 0..2 fully masked.
    let m = common::padded_causal_mask(rows, heads, len, 2);
    let mask = Tensor::<B, 4, Bool>::from_data(TensorData::new(m, [rows, heads, len, len]), &device);
    let scale = 0.5;
    let ours = grouped_attention(q.clone(), k.clone(), v.clone(), mask.clone(), scale);
    let opts = AttentionModuleOptions { scale: Some(scale), softcap: None, is_causal: false };
    let theirs = burn_attention(q.clone(), k.clone(), v.clone(), Some(mask), None, opts);
    let ov: Vec<f32> = ours.to_data().to_vec().unwrap();
    assert!(ov.iter().all(|x| x.is_finite()), "no NaN/Inf, even for fully masked query rows");
    // Fully masked query rows give zeros.
    for h in 0..heads {
        for i in 0..2 {
            for e in 0..d {
                assert_eq!(ov[((heads + h) * len + i) * d + e], 0.0);
            }
        }
    }
    assert!(max_rel(&ours, &theirs) < 1e-5, "values: {}", max_rel(&ours, &theirs));

    let w = Tensor::<B, 4>::random([rows, heads, len, d], Distribution::Normal(0.0, 1.0), &device);
    let g1 = (ours * w.clone()).sum().backward();
    let g2 = (theirs * w).sum().backward();
    for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
        let a = Tensor::<B, 4>::from_inner(t.grad(&g1).unwrap());
        let b = Tensor::<B, 4>::from_inner(t.grad(&g2).unwrap());
        let rel = max_rel(&a, &b);
        assert!(rel < 1e-5, "grad {name}: {rel}");
    }
}

#[test]
fn without_a_fast_path_the_entry_points_are_burns_ops() {
    assert!(!rmd_kernels::has_fast_matmul::<B>());
    let device = Default::default();
    let x = Tensor::<B, 3>::random([2, 5, 7], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<B, 2>::random([7, 3], Distribution::Normal(0.0, 1.0), &device);
    let b = Tensor::<B, 1>::random([3], Distribution::Normal(0.0, 1.0), &device);
    let ours: Vec<f32> = rmd_kernels::linear(x.clone(), w.clone(), Some(b.clone())).to_data().to_vec().unwrap();
    let theirs: Vec<f32> = burn::tensor::module::linear(x, w, Some(b)).to_data().to_vec().unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn embedding_matches_burn_embedding_with_repeated_ids() {
    let device = Default::default();
    let (vocab, hidden) = (11, 6);
    let module = EmbeddingConfig::new(vocab, hidden).init::<B>(&device);
    // Id 3 four times, 0 twice: their gradients accumulate; ids 1, 2, 4.. get none.
    let ids_host: [[i64; 4]; 2] = [[3, 0, 3, 10], [3, 7, 0, 3]];
    let ids = Tensor::<B, 2, Int>::from_ints(ids_host, &device);
    let ours = rmd_kernels::embedding(module.weight.val(), ids.clone());
    let theirs = module.forward(ids);
    let ov: Vec<f32> = ours.to_data().to_vec().unwrap();
    assert_eq!(ov, theirs.to_data().to_vec::<f32>().unwrap());

    let w = Tensor::<B, 3>::random([2, 4, hidden], Distribution::Normal(0.0, 1.0), &device);
    let g1 = (ours * w.clone()).sum().backward();
    let g2 = (theirs * w.clone()).sum().backward();
    let ga: Vec<f32> = module.weight.grad(&g1).unwrap().to_data().to_vec().unwrap();
    let gb: Vec<f32> = module.weight.grad(&g2).unwrap().to_data().to_vec().unwrap();
    assert_eq!(ga, gb);
    // And the accumulation itself: row `id` is the sum of `w` over the tokens with that id.
    let wv: Vec<f32> = w.to_data().to_vec().unwrap();
    let mut want = vec![0f32; vocab * hidden];
    for (t, &id) in ids_host.iter().flatten().enumerate() {
        for c in 0..hidden {
            want[id as usize * hidden + c] += wv[t * hidden + c];
        }
    }
    let err = ga.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(err < 1e-5, "weight gradient vs host sum: {err}");
}
