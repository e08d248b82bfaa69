// Runs crates/rmd-kernels/src/cuda/flash.cu on the CPU (emu.h) for tiny shapes and compares
// every output with a float64 reference of masked grouped-query attention and its gradients.
// Built and run by check.sh for HD = 64 and 128, with byte-wise and word-wise mask reads.
#include "emu.h"

#include <cstdio>
#include <cstdlib>
#include <random>

#include "flash_emu.inc"
#include "check.h"

using bf = __nv_bfloat16;

struct Case {
    int rows, heads, kvh, L, pad;
    // Operands as the model passes them: [rows, L, heads, HD] memory read through strides.
    bool interleaved;
    // Query scale: large values make sharp softmaxes whose running max jumps between tiles.
    float sharp = 1.0f;
};

// Element strides of [rows, heads, L, HD] data stored either contiguously or as [rows, L, heads, HD].
static Strides strides(int heads, int L, bool interleaved) {
    if (interleaved) return Strides{(long long)L * heads * HD, HD, (long long)heads * HD};
    return Strides{(long long)heads * L * HD, (long long)L * HD, HD};
}

// Contiguous [rows, heads, L, HD] data <-> the layout `s` (to_layout) or back (from_layout).
template <class T>
static std::vector<T> to_layout(const std::vector<T>& x, int rows, int heads, int L, Strides s) {
    std::vector<T> y(x.size());
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < L; i++)
                for (int c = 0; c < HD; c++) y[s.at(r, h, i) + c] = x[(((size_t)r * heads + h) * L + i) * HD + c];
    return y;
}
template <class T>
static std::vector<T> from_layout(const std::vector<T>& y, int rows, int heads, int L, Strides s) {
    std::vector<T> x(y.size());
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < L; i++)
                for (int c = 0; c < HD; c++) x[(((size_t)r * heads + h) * L + i) * HD + c] = y[s.at(r, h, i) + c];
    return x;
}

static bool run(const Case& cs, unsigned seed) {
    const int R = cs.rows, H = cs.heads, G = cs.kvh, L = cs.L, n_rep = H / G;
    const int Lp = (L + 63) / 64 * 64;
    const float scale = 1.0f / std::sqrt((float)HD);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto rand_bf = [&](size_t n, float mul = 1.0f) {
        std::vector<bf> v(n);
        for (auto& x : v) x = __float2bfloat16(mul * nd(rng));
        return v;
    };
    const size_t nq = (size_t)R * H * L * HD, nk = (size_t)R * G * L * HD;
    std::vector<bf> q = rand_bf(nq, cs.sharp), k = rand_bf(nk), v = rand_bf(nk), dout = rand_bf(nq);
    // Mask [R, 1, L, L] broadcast over heads (stride 0): causal, and in row 1 the first `pad`
    // keys are padding (queries before `pad` then see nothing: fully masked rows).
    std::vector<unsigned char> mask((size_t)R * L * L);
    for (int r = 0; r < R; r++)
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++) mask[((size_t)r * L + i) * L + j] = (j > i) || (r == 1 && j < cs.pad);
    const long long ms0 = (long long)L * L, ms1 = 0, ms2 = L, ms3 = 1;

    const Strides qs = strides(H, L, cs.interleaved), ks = strides(G, L, cs.interleaved);
    const std::vector<bf> dq_in = to_layout(q, R, H, L, qs), dk_in = to_layout(k, R, G, L, ks), dv_in = to_layout(v, R, G, L, ks),
                          ddo_in = to_layout(dout, R, H, L, qs);
    std::vector<bf> od(nq), dqd(nq), dkd(nk), dvd(nk);
    std::vector<float> lse((size_t)R * H * L), dvec((size_t)R * H * L), dqacc(nq, 0.0f);
    std::vector<float> dkp((size_t)R * H * Lp * HD), dvp((size_t)R * H * Lp * HD);
    const size_t smem_fwd = SMEM_FWD, smem_bwd = SMEM_BWD;
    const unsigned tiles = (unsigned)((L + 63) / 64);
    launch(Dim3{tiles, (unsigned)H, (unsigned)R}, NT, smem_fwd, [&] {
        flash_fwd(dq_in.data(), qs, dk_in.data(), ks, dv_in.data(), ks, mask.data(), ms0, ms1, ms2, ms3, 1, od.data(), qs, lse.data(), H,
                  G, L, scale);
    });
    const long long nrows = (long long)R * H * L;
    launch(Dim3{(unsigned)((nrows + 3) / 4), 1, 1}, NT, 0,
           [&] { flash_bwd_prep(od.data(), qs, ddo_in.data(), qs, dvec.data(), H, L, nrows); });
    launch(Dim3{tiles, (unsigned)H, (unsigned)R}, NT, smem_bwd, [&] {
        flash_bwd(dq_in.data(), qs, dk_in.data(), ks, dv_in.data(), ks, ddo_in.data(), qs, lse.data(), dvec.data(), mask.data(), ms0,
                  ms1, ms2, ms3, 1, dqacc.data(), dkp.data(), dvp.data(), H, G, L, Lp, scale);
    });
    const long long total = (long long)R * G * L * HD;
    launch(Dim3{(unsigned)((total + NT - 1) / NT), 1, 1}, NT, 0,
           [&] { flash_bwd_reduce(dkp.data(), dvp.data(), dkd.data(), dvd.data(), ks, H, G, L, Lp, total); });
    launch(Dim3{(unsigned)((nq / 2 + NT - 1) / NT), 1, 1}, NT, 0, [&] { flash_bwd_dq(dqacc.data(), dqd.data(), qs, H, L, (long long)nq); });
    const std::vector<bf> o = from_layout(od, R, H, L, qs), dq = from_layout(dqd, R, H, L, qs), dk = from_layout(dkd, R, G, L, ks),
                          dv = from_layout(dvd, R, G, L, ks);

    // float64 reference on the same bf16 inputs.
    auto f = [](bf x) { return (double)__bfloat162float(x); };
    std::vector<double> ro(nq, 0.0), rdq(nq, 0.0), rdk(nk, 0.0), rdv(nk, 0.0), rlse((size_t)R * H * L);
    std::vector<double> p(L), dp(L);
    for (int r = 0; r < R; r++)
        for (int h = 0; h < H; h++) {
            const int g = h / n_rep;
            const size_t qb = ((size_t)r * H + h) * L, kb = ((size_t)r * G + g) * L;
            for (int i = 0; i < L; i++) {
                double mx = -INFINITY;
                for (int j = 0; j < L; j++) {
                    if (mask[((size_t)r * L + i) * L + j]) {
                        p[j] = -INFINITY;
                        continue;
                    }
                    double s = 0.0;
                    for (int c = 0; c < HD; c++) s += f(q[(qb + i) * HD + c]) * f(k[(kb + j) * HD + c]);
                    p[j] = s * scale;
                    mx = std::max(mx, p[j]);
                }
                double sum = 0.0;
                for (int j = 0; j < L; j++) sum += p[j] == -INFINITY ? 0.0 : std::exp(p[j] - mx);
                for (int j = 0; j < L; j++) p[j] = (p[j] == -INFINITY || sum == 0.0) ? 0.0 : std::exp(p[j] - mx) / sum;
                rlse[qb + i] = sum > 0.0 ? mx + std::log(sum) : INFINITY;
                for (int c = 0; c < HD; c++) {
                    double acc = 0.0;
                    for (int j = 0; j < L; j++) acc += p[j] * f(v[(kb + j) * HD + c]);
                    ro[(qb + i) * HD + c] = acc;
                }
                double dd = 0.0;
                for (int c = 0; c < HD; c++) dd += f(dout[(qb + i) * HD + c]) * ro[(qb + i) * HD + c];
                for (int j = 0; j < L; j++) {
                    double s = 0.0;
                    for (int c = 0; c < HD; c++) s += f(dout[(qb + i) * HD + c]) * f(v[(kb + j) * HD + c]);
                    dp[j] = p[j] * (s - dd) * scale;  // dS
                    for (int c = 0; c < HD; c++) {
                        rdv[(kb + j) * HD + c] += p[j] * f(dout[(qb + i) * HD + c]);
                        rdk[(kb + j) * HD + c] += dp[j] * f(q[(qb + i) * HD + c]);
                        rdq[(qb + i) * HD + c] += dp[j] * f(k[(kb + j) * HD + c]);
                    }
                }
            }
        }
    auto widen = [&](const std::vector<bf>& x) {
        std::vector<double> y(x.size());
        for (size_t i = 0; i < x.size(); i++) y[i] = f(x[i]);
        return y;
    };
    std::vector<double> gl;
    for (size_t i = 0; i < lse.size(); i++) {
        // Fully masked rows: +inf in both.
        gl.push_back(std::isinf(rlse[i]) && std::isinf(lse[i]) ? 0.0 : (double)lse[i]);
        if (std::isinf(rlse[i])) rlse[i] = 0.0;
    }
    const double e_o = max_rel(widen(o), ro), e_l = max_rel(gl, rlse), e_q = max_rel(widen(dq), rdq), e_k = max_rel(widen(dk), rdk),
                 e_v = max_rel(widen(dv), rdv);
    const bool ok = e_o < 1e-2 && e_l < 1e-3 && e_q < 2e-2 && e_k < 2e-2 && e_v < 2e-2;
    std::printf("HD %d rows %d heads %d/%d L %d pad %d %s: out %.2e lse %.2e dq %.2e dk %.2e dv %.2e %s\n", HD, R, H, G, L, cs.pad, cs.interleaved ? "interleaved" : "contiguous", e_o,
                e_l, e_q, e_k, e_v, ok ? "ok" : "FAILED");
    return ok;
}

int main() {
    bool ok = true;
    ok &= run({2, 4, 2, 80, 5, true}, 1);    // partial second tile, grouped heads, fully masked rows
    ok &= run({1, 2, 2, 64, 0, false}, 2);   // one whole tile, no grouping
    ok &= run({2, 6, 2, 130, 70, true}, 3);  // three tiles, a padding run longer than a tile
    ok &= run({1, 4, 1, 72, 0, false}, 4);   // contiguous operands, all query heads on one kv head
    ok &= run({2, 2, 1, 200, 3, true, 12.0f}, 5);  // sharp softmaxes: the running max moves often
    return ok ? 0 : 1;
}
