//! The autodiff nodes of `rmd_kernels::autodiff` (what `Autodiff<Cuda>` trains with) on the
//! CPU: values and gradients against burn's autodiff of the plain formulas (f32; the f64
//! finite-difference check of the attention backward is in tests/attention_fd.rs, its own
//! process, because burn's CPU device is shared by the f32 and f64 backends).

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Distribution, Tensor, TensorData};
use rmd_kernels::{autodiff, repeat_kv};

type I = NdArray<f32>;
type B = Autodiff<I>;

fn host<Bk: Backend, const D: usize>(t: &Tensor<Bk, D>) -> Vec<f64> {
    t.to_data().convert::<f64>().to_vec().unwrap()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    assert!(a.iter().all(|x| x.is_finite()), "non-finite values");
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-12);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f64, f64::max) / scale
}

fn randn<const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default()).require_grad()
}

fn mask(rows: usize, heads: usize, len: usize, pad: usize) -> Tensor<B, 4, Bool> {
    let m = common::padded_causal_mask(rows, heads, len, pad);
    Tensor::from_data(TensorData::new(m, [rows, heads, len, len]), &Default::default())
}

#[test]
fn attention_node_matches_burn_attention_with_grouped_heads() {
    let (rows, heads, kvh, len, d) = (2, 6, 2, 7, 4);
    let (q, k, v) = (randn([rows, heads, len, d]), randn([rows, kvh, len, d]), randn([rows, kvh, len, d]));
    let m = mask(rows, heads, len, 3);
    let ours = autodiff::attention(q.clone(), k.clone(), v.clone(), m.clone(), 0.5);
    let opts = AttentionModuleOptions { scale: Some(0.5), softcap: None, is_causal: false };
    let theirs = burn_attention(q.clone(), repeat_kv(k.clone(), 3), repeat_kv(v.clone(), 3), Some(m), None, opts);
    let (o, t) = (host(&ours), host(&theirs));
    assert!(max_rel(&o, &t) < 1e-5, "values {:.2e}", max_rel(&o, &t));
    // Row 1's query positions 0..3 are fully masked: zeros, not NaN.
    for h in 0..heads {
        for i in 0..3 {
            for e in 0..d {
                assert_eq!(o[(((heads + h) * len) + i) * d + e], 0.0);
            }
        }
    }
    let w = Tensor::<B, 4>::random([rows, heads, len, d], Distribution::Normal(0.0, 1.0), &Default::default());
    let g1 = (ours * w.clone()).sum().backward();
    let g2 = (theirs * w).sum().backward();
    for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
        let rel = max_rel(&host(&t.grad(&g1).unwrap()), &host(&t.grad(&g2).unwrap()));
        // f32 with different summation orders (seen up to ~3e-5 of the largest entry).
        assert!(rel < 2e-4, "grad {name}: {rel:.2e}");
    }
}

#[test]
fn swiglu_node_matches_plain_formula() {
    let (gate, up) = (randn([3, 5, 8]), randn([3, 5, 8]));
    let ours = autodiff::swiglu(gate.clone(), up.clone());
    let theirs = silu(gate.clone()) * up.clone();
    assert!(max_rel(&host(&ours), &host(&theirs)) < 1e-6);
    let w = Tensor::<B, 3>::random([3, 5, 8], Distribution::Normal(0.0, 1.0), &Default::default());
    let g1 = (ours * w.clone()).sum().backward();
    let g2 = (theirs * w).sum().backward();
    for (name, t) in [("gate", &gate), ("up", &up)] {
        let rel = max_rel(&host(&t.grad(&g1).unwrap()), &host(&t.grad(&g2).unwrap()));
        assert!(rel < 1e-5, "grad {name}: {rel:.2e}");
    }
    // The entry point on a plain backend computes the same values.
    let plain = rmd_kernels::swiglu(gate.clone().inner(), up.clone().inner());
    assert!(max_rel(&host(&plain), &host(&(silu(gate) * up))) < 1e-6);
}

#[test]
fn rms_norm_node_matches_plain_formula() {
    let eps = 1e-6;
    let (x, gamma) = (randn([2, 3, 16]), randn([16]));
    let plain = |x: Tensor<B, 3>, gamma: Tensor<B, 1>| {
        let r = (x.clone().square().mean_dim(2) + eps).sqrt();
        x / r * gamma.unsqueeze::<3>()
    };
    let ours = autodiff::rms_norm(x.clone(), gamma.clone(), eps);
    let theirs = plain(x.clone(), gamma.clone());
    assert!(max_rel(&host(&ours), &host(&theirs)) < 1e-6);
    let w = Tensor::<B, 3>::random([2, 3, 16], Distribution::Normal(0.0, 1.0), &Default::default());
    let g1 = (ours * w.clone()).sum().backward();
    let g2 = (theirs * w).sum().backward();
    let rel_x = max_rel(&host(&x.grad(&g1).unwrap()), &host(&x.grad(&g2).unwrap()));
    let rel_g = max_rel(&host(&gamma.grad(&g1).unwrap()), &host(&gamma.grad(&g2).unwrap()));
    assert!(rel_x < 1e-5 && rel_g < 1e-5, "grad x {rel_x:.2e}, grad gamma {rel_g:.2e}");
    let entry = rmd_kernels::rms_norm(x.clone().inner(), gamma.clone().inner(), eps);
    assert!(max_rel(&host(&entry), &host(&plain(x, gamma))) < 1e-6);
}
