// Runs crates/rmd-kernels/src/cuda/rms_norm.cu on the CPU (emu.h) against a float64 reference of
// RMSNorm's forward (y, s) and backward (dx, d gamma): bf16 and f32 weights, the 8-column vector
// path (n % 8 == 0) and the column-by-column one, a row count that leaves the last backward block
// partly empty. Built and run by check.sh.
#include "emu.h"

#include <random>

#include "rms_norm_emu.inc"
#include "check.h"

static constexpr unsigned NT_ = 128, RPB_ = 64;

static void set(bf& d, float v) { d = __float2bfloat16(v); }
static void set(float& d, float v) { d = v; }
static double widen(bf v) { return __bfloat162float(v); }
static double widen(float v) { return v; }

static bool run(long long rows, int n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const float eps = 1e-6f;
    std::vector<bf> x(rows * n), g(rows * n), y(rows * n), dx(rows * n);
    std::vector<G> gamma(n), dgamma(n);
    for (auto& v : x) v = __float2bfloat16(3.0f * nd(rng));
    for (auto& v : g) v = __float2bfloat16(nd(rng));
    for (auto& v : gamma) set(v, 1.0f + 0.2f * nd(rng));
    std::vector<float> s(rows);
    const long long nblocks = (rows + RPB_ - 1) / RPB_;
    std::vector<float> partials(nblocks * n);
    const bool al = n % 8 == 0;
    const int vec = al ? 1 : 0;
    launch(Dim3{(unsigned)((rows + 3) / 4), 1, 1}, NT_, 0, [&] { rms_fwd(x.data(), gamma.data(), y.data(), s.data(), rows, n, eps, vec); });
    launch(Dim3{(unsigned)nblocks, 1, 1}, NT_, n * 4,
           [&] { rms_bwd(x.data(), gamma.data(), s.data(), g.data(), dx.data(), partials.data(), rows, n, vec); });
    launch(Dim3{(unsigned)((n + NT_ - 1) / NT_), 1, 1}, NT_, 0, [&] { rms_dgamma(partials.data(), dgamma.data(), (int)nblocks, n); });

    std::vector<double> ry(rows * n), rdx(rows * n), rdg(n, 0.0), rs(rows), gy, gdx, gdg, gs;
    for (long long r = 0; r < rows; r++) {
        double ss = 0.0;
        for (int c = 0; c < n; c++) ss += widen(x[r * n + c]) * widen(x[r * n + c]);
        const double sr = std::sqrt(ss / n + eps);
        rs[r] = sr;
        double m = 0.0;
        for (int c = 0; c < n; c++) {
            const double xh = widen(x[r * n + c]) / sr, h = widen(g[r * n + c]) * widen(gamma[c]);
            ry[r * n + c] = xh * widen(gamma[c]);
            m += h * xh;
            rdg[c] += widen(g[r * n + c]) * xh;
        }
        m /= n;
        for (int c = 0; c < n; c++) {
            const double xh = widen(x[r * n + c]) / sr;
            rdx[r * n + c] = (widen(g[r * n + c]) * widen(gamma[c]) - xh * m) / sr;
        }
    }
    for (auto v : y) gy.push_back(widen(v));
    for (auto v : dx) gdx.push_back(widen(v));
    for (auto v : dgamma) gdg.push_back(widen(v));
    for (auto v : s) gs.push_back(v);
    const double e_y = max_rel(gy, ry), e_s = max_rel(gs, rs), e_dx = max_rel(gdx, rdx), e_dg = max_rel(gdg, rdg);
    const bool ok = e_y < 1e-2 && e_s < 1e-5 && e_dx < 1e-2 && e_dg < 1e-2;
    std::printf("rms_norm gamma %s rows %lld n %d (%s): y %.2e s %.2e dx %.2e dgamma %.2e %s\n", sizeof(G) == 4 ? "f32" : "bf16", rows,
                n, vec ? "vectors" : "columns", e_y, e_s, e_dx, e_dg, ok ? "ok" : "FAILED");
    return ok;
}

int main() {
    bool ok = true;
    ok &= run(150, 96, 1);   // vectors; three backward blocks, the last one partly empty
    ok &= run(70, 45, 2);    // columns (n not a multiple of 8)
    ok &= run(64, 896, 3);   // Qwen2.5-0.5B's hidden size: 3.5 vectors per lane
    return ok ? 0 : 1;
}
