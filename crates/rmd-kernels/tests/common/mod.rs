//! Shared test inputs.

/// `[rows, heads, len, len]` attention mask (`true` = masked), flattened: causal everywhere, and
/// row 1 left-padded by `pad` (keys `0..pad` masked, and query rows `0..pad` fully masked).
pub fn padded_causal_mask(rows: usize, heads: usize, len: usize, pad: usize) -> Vec<bool> {
    let mut m = vec![false; rows * heads * len * len];
    for r in 0..rows {
        for h in 0..heads {
            for i in 0..len {
                for j in 0..len {
                    m[((r * heads + h) * len + i) * len + j] = j > i || (r == 1 && (j < pad || i < pad));
                }
            }
        }
    }
    m
}
