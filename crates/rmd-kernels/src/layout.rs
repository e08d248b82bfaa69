//! How a strided row-major matmul maps onto one column-major strided-batched GEMM call.
//!
//! Kept apart from the CUDA code so the mapping is tested in CI against a reference GEMM
//! (tests below) and the GPU run only has to confirm cuBLAS agrees.
#![cfg_attr(not(feature = "cuda"), allow(dead_code))]

/// One operand's storage: which way its matrices are laid out and how far apart they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatrixLayout {
    /// Unit stride on the last dimension (else on the second-to-last).
    pub row_major: bool,
    /// Leading dimension: the stride of the non-unit matrix dimension.
    pub ld: i64,
    /// Stride between consecutive matrices of the folded batch (0 for a single matrix).
    pub batch_stride: i64,
}

/// The layout of a tensor with `shape`/`strides` (at least 2 dims), or `None` when its batch
/// dimensions do not fold into one stride or neither matrix dimension has unit stride (the
/// caller then makes it contiguous).
pub(crate) fn describe(shape: &[usize], strides: &[usize]) -> Option<MatrixLayout> {
    let d = shape.len();
    let (r, c, sr, sc) = (shape[d - 2], shape[d - 1], strides[d - 2], strides[d - 1]);
    let batch: Vec<(usize, usize)> = shape[..d - 2].iter().zip(&strides[..d - 2]).map(|(&s, &t)| (s, t)).filter(|&(s, _)| s > 1).collect();
    let batch_stride = match batch.as_slice() {
        [] => 0,
        [.., (_, inner)] => {
            if !batch.windows(2).all(|w| w[0].1 == w[1].1 * w[1].0) {
                return None;
            }
            *inner as i64
        }
    };
    // A size-1 dimension's stride is arbitrary; choose the one that makes the layout valid.
    if sc == 1 || c == 1 {
        let ld = if r == 1 { c } else { sr };
        if ld >= c.max(1) {
            return Some(MatrixLayout { row_major: true, ld: ld as i64, batch_stride });
        }
    }
    if sr == 1 || r == 1 {
        let ld = if c == 1 { r } else { sc };
        if ld >= r.max(1) {
            return Some(MatrixLayout { row_major: false, ld: ld as i64, batch_stride });
        }
    }
    None
}

/// Arguments of a column-major `C = op(A) op(B)` strided-batched GEMM (cuBLAS's convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GemmArgs {
    /// `true` = op T.
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: i64,
    pub stride_a: i64,
    pub ldb: i64,
    pub stride_b: i64,
    pub ldc: i64,
    pub stride_c: i64,
    pub batch: usize,
}

/// Row-major `C[m×n] = L[m×k] · R[k×n]` written into a contiguous `C` is column-major
/// `Cᵀ = Rᵀ · Lᵀ`: the right operand goes first. A row-major operand read column-major is
/// already transposed (op N); a column-major one needs op T.
pub(crate) fn gemm_args(m: usize, k: usize, n: usize, batch: usize, lhs: MatrixLayout, rhs: MatrixLayout) -> GemmArgs {
    GemmArgs {
        trans_a: !rhs.row_major,
        trans_b: !lhs.row_major,
        m: n,
        n: m,
        k,
        lda: rhs.ld,
        stride_a: rhs.batch_stride,
        ldb: lhs.ld,
        stride_b: lhs.batch_stride,
        ldc: n as i64,
        stride_c: (m * n) as i64,
        batch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference column-major strided-batched GEMM, as cuBLAS defines it.
    fn reference_gemm(g: &GemmArgs, a: &[f64], b: &[f64], c: &mut [f64]) {
        for p in 0..g.batch {
            let (oa, ob, oc) = (p as i64 * g.stride_a, p as i64 * g.stride_b, p as i64 * g.stride_c);
            for i in 0..g.m {
                for j in 0..g.n {
                    let mut acc = 0.0;
                    for l in 0..g.k {
                        // op(A)[i, l] and op(B)[l, j] in column-major storage.
                        let ai = if g.trans_a { l as i64 + i as i64 * g.lda } else { i as i64 + l as i64 * g.lda };
                        let bi = if g.trans_b { j as i64 + l as i64 * g.ldb } else { l as i64 + j as i64 * g.ldb };
                        acc += a[(oa + ai) as usize] * b[(ob + bi) as usize];
                    }
                    c[(oc + i as i64 + j as i64 * g.ldc) as usize] = acc;
                }
            }
        }
    }

    /// A logical `[batch, rows, cols]` tensor stored with the given dimension order and padding.
    struct Strided {
        shape: Vec<usize>,
        strides: Vec<usize>,
        data: Vec<f64>,
    }

    impl Strided {
        /// `order`: storage order of the three dims, outermost first; `pad`: extra elements per
        /// innermost line (so leading dimensions exceed the minimum).
        fn new(shape: [usize; 3], order: [usize; 3], pad: usize, seed: u64) -> Self {
            let mut strides = [0usize; 3];
            let mut step = 1;
            for (pos, &dim) in order.iter().enumerate().rev() {
                strides[dim] = step;
                step *= shape[dim] + if pos == 2 { pad } else { 0 };
            }
            let mut s = seed;
            let data = (0..step)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((s >> 33) % 1000) as f64 / 100.0 - 5.0
                })
                .collect();
            Self { shape: shape.to_vec(), strides: strides.to_vec(), data }
        }

        fn at(&self, p: usize, i: usize, j: usize) -> f64 {
            self.data[p * self.strides[0] + i * self.strides[1] + j * self.strides[2]]
        }
    }

    #[test]
    fn every_layout_pair_matches_a_naive_matmul() {
        let (batch, m, k, n) = (3, 4, 5, 2);
        // Row-major and column-major matrices, with and without padded leading dimensions,
        // batch outermost (foldable).
        let orders = [[0, 1, 2], [0, 2, 1]];
        let mut checked = 0;
        for lo in orders {
            for ro in orders {
                for (lp, rp) in [(0, 0), (3, 1)] {
                    let l = Strided::new([batch, m, k], lo, lp, 1);
                    let r = Strided::new([batch, k, n], ro, rp, 2);
                    let ll = describe(&l.shape, &l.strides).expect("foldable");
                    let rl = describe(&r.shape, &r.strides).expect("foldable");
                    let g = gemm_args(m, k, n, batch, ll, rl);
                    let mut c = vec![f64::NAN; batch * m * n];
                    reference_gemm(&g, &r.data, &l.data, &mut c);
                    for p in 0..batch {
                        for i in 0..m {
                            for j in 0..n {
                                let want: f64 = (0..k).map(|q| l.at(p, i, q) * r.at(p, q, j)).sum();
                                let got = c[p * m * n + i * n + j];
                                assert!((got - want).abs() < 1e-9, "{lo:?}/{ro:?} pad {lp},{rp}: C[{p},{i},{j}] = {got}, want {want}");
                            }
                        }
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 8);
    }

    #[test]
    fn transposed_view_is_column_major_without_copy() {
        // A contiguous [4, 6] viewed as its transpose [6, 4]: strides [1, 6].
        assert_eq!(describe(&[6, 4], &[1, 6]), Some(MatrixLayout { row_major: false, ld: 6, batch_stride: 0 }));
        // attention's kᵀ: [rows, heads, len, d] contiguous, swap_dims(2, 3) -> [2, 3, 8, 5] with strides [120, 40, 1, 8].
        assert_eq!(describe(&[2, 3, 8, 5], &[120, 40, 1, 8]), Some(MatrixLayout { row_major: false, ld: 8, batch_stride: 40 }));
    }

    #[test]
    fn unfoldable_batches_and_non_unit_strides_are_refused() {
        // [rows, len, heads, d].swap_dims(1, 2): heads stride d, rows stride len*heads*d — the
        // batch dims (rows, heads) do not fold into one stride.
        assert_eq!(describe(&[2, 3, 8, 5], &[120, 5, 15, 1]), None);
        // Every-other-element view: no unit stride.
        assert_eq!(describe(&[4, 3], &[6, 2]), None);
    }

    #[test]
    fn size_one_dimensions_take_any_stride() {
        // A single row whose row stride is meaningless.
        assert_eq!(describe(&[1, 7], &[0, 1]), Some(MatrixLayout { row_major: true, ld: 7, batch_stride: 0 }));
        // A single column.
        assert_eq!(describe(&[7, 1], &[1, 99]), Some(MatrixLayout { row_major: true, ld: 1, batch_stride: 0 }));
        // Size-1 batch dims are ignored when folding.
        assert_eq!(describe(&[1, 2, 3, 4], &[999, 12, 4, 1]), Some(MatrixLayout { row_major: true, ld: 4, batch_stride: 12 }));
    }
}
