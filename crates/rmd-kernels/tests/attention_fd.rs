//! The attention backward of `rmd_kernels::grouped_attention_backward` (what the CUDA
//! training node runs) against central finite differences of its forward, in f64, with
//! grouped-query heads and a causal mask.

mod common;

use burn::backend::NdArray;
use burn::tensor::{Bool, Tensor, TensorData};

#[test]
fn attention_backward_matches_finite_differences() {
    type F = NdArray<f64>;
    let device = Default::default();
    let (rows, heads, kvh, len, d, scale) = (1, 4, 2, 5, 3, 0.7);
    let rnd = |shape: [usize; 4], seed: u64| {
        let mut s = seed;
        let v: Vec<f64> = (0..shape.iter().product::<usize>())
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect();
        Tensor::<F, 4>::from_data(TensorData::new(v, shape), &device)
    };
    let (q, k, v) = (rnd([rows, heads, len, d], 1), rnd([rows, kvh, len, d], 2), rnd([rows, kvh, len, d], 3));
    let w = rnd([rows, heads, len, d], 4);
    let m = Tensor::<F, 4, Bool>::from_data(TensorData::new(common::padded_causal_mask(rows, heads, len, 0), [rows, heads, len, len]), &device);
    let loss = |q: Tensor<F, 4>, k: Tensor<F, 4>, v: Tensor<F, 4>| -> f64 {
        let o = rmd_kernels::grouped_attention(q, k, v, m.clone(), scale);
        (o * w.clone()).sum().into_scalar()
    };
    let (_, lse) = rmd_kernels::grouped_attention_with_lse(q.clone(), k.clone(), v.clone(), m.clone(), scale);
    let (dq, dk, dv) = rmd_kernels::grouped_attention_backward(q.clone(), k.clone(), v.clone(), m.clone(), scale, lse, w.clone());
    let eps = 1e-6;
    for (which, grad) in [(0usize, dq), (1, dk), (2, dv)] {
        let g: Vec<f64> = grad.to_data().to_vec().unwrap();
        let base = [q.clone(), k.clone(), v.clone()][which].clone();
        let shape = base.dims();
        let vals: Vec<f64> = base.to_data().to_vec().unwrap();
        for idx in 0..vals.len() {
            let at = |delta: f64| {
                let mut x = vals.clone();
                x[idx] += delta;
                let t = Tensor::<F, 4>::from_data(TensorData::new(x, shape), &device);
                match which {
                    0 => loss(t, k.clone(), v.clone()),
                    1 => loss(q.clone(), t, v.clone()),
                    _ => loss(q.clone(), k.clone(), t),
                }
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!((fd - g[idx]).abs() < 1e-7 * (1.0 + fd.abs()), "input {which} index {idx}: analytic {} vs fd {fd}", g[idx]);
        }
    }
}
