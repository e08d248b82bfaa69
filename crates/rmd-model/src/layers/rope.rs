//! Rotary position embeddings in HF's `rotate_half` layout: the head dimension is split in two
//! halves (not interleaved pairs as in burn-nn's `RotaryEncoding`), and `cos`/`sin` repeat the
//! `head_dim / 2` frequencies over both halves.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::{DecoderConfig, RopeScaling};

/// Inverse frequencies for one head, computed once from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct RotaryEmbedding {
    pub inv_freq: Vec<f32>,
}

/// `cos` and `sin` for a batch of positions, shaped `[rows, 1, len, head_dim]` to broadcast over heads.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    pub cos: Tensor<B, 4>,
    pub sin: Tensor<B, 4>,
}

impl RotaryEmbedding {
    pub fn new(c: &DecoderConfig) -> Self {
        Self {
            inv_freq: inv_freq(c.head_dim(), c.rope_theta, c.rope_scaling),
        }
    }

    /// Tables for `positions` (`[rows, len]`).
    pub fn tables<B: Backend>(&self, positions: Tensor<B, 2, Int>) -> RopeTables<B> {
        let [rows, len] = positions.dims();
        let half = self.inv_freq.len();
        let device = positions.device();
        let inv =
            Tensor::<B, 1>::from_data(TensorData::new(self.inv_freq.clone(), [half]), &device)
                .reshape([1, 1, half]);
        // Same rounding as transformers: f32 position times f32 inverse frequency.
        let freqs = positions.float().reshape([rows, len, 1]) * inv;
        let emb = Tensor::cat(vec![freqs.clone(), freqs], 2).reshape([rows, 1, len, 2 * half]);
        RopeTables {
            cos: emb.clone().cos(),
            sin: emb.sin(),
        }
    }
}

/// `x * cos + rotate_half(x) * sin` for `x` of shape `[rows, heads, len, head_dim]`
/// ([`rmd_kernels::rotary`]: one kernel per direction on CUDA).
pub fn apply_rotary<B: Backend>(x: Tensor<B, 4>, t: &RopeTables<B>) -> Tensor<B, 4> {
    rmd_kernels::rotary(x, t.cos.clone(), t.sin.clone())
}

/// HF's inverse frequencies, including the `linear` and `llama3` rescalings.
pub fn inv_freq(head_dim: usize, theta: f64, scaling: RopeScaling) -> Vec<f32> {
    let base: Vec<f64> = (0..head_dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / head_dim as f64))
        .collect();
    let scaled: Vec<f64> = match scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.into_iter().map(|f| f / factor).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let old = original_max_position_embeddings as f64;
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    };
    scaled.into_iter().map(|f| f as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_bands_match_hand_computation() {
        // head_dim 8, theta 100: inv_freq = [1, 100^-0.25, 100^-0.5, 100^-0.75]
        // wavelengths 2pi/f = [6.28, 19.87, 62.83, 198.7]; old context 64, low 1 -> 64, high 4 -> 16.
        let s = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        };
        let got = inv_freq(8, 100.0, s);
        let f: Vec<f64> = (0..4).map(|i| 100f64.powf(-(i as f64) / 4.0)).collect();
        // band 0: wavelen 6.28 < 16 -> kept; band 3: 198.7 > 64 -> divided by 8
        assert!((got[0] as f64 - f[0]).abs() < 1e-7);
        assert!((got[3] as f64 - f[3] / 8.0).abs() < 1e-7);
        // bands 1 and 2 lie between: smooth = (64 / wavelen - 1) / 3
        for i in [1, 2] {
            let wl = 2.0 * std::f64::consts::PI / f[i];
            let sm = (64.0 / wl - 1.0) / 3.0;
            let want = (1.0 - sm) * f[i] / 8.0 + sm * f[i];
            assert!(
                (got[i] as f64 - want).abs() < 1e-7,
                "band {i}: {} vs {want}",
                got[i]
            );
        }
    }

    #[test]
    fn linear_scaling_divides() {
        let a = inv_freq(16, 10000.0, RopeScaling::None);
        let b = inv_freq(16, 10000.0, RopeScaling::Linear { factor: 4.0 });
        for (x, y) in a.iter().zip(&b) {
            assert!((x / 4.0 - y).abs() <= f32::EPSILON * x);
        }
    }
}
