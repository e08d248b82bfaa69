// Runs crates/rmd-kernels/src/cuda/swiglu.cu on the CPU (emu.h) and compares both kernels with a
// float64 reference on the same (bf16-rounded) inputs: out = silu(gate) * up; d_gate, d_up. Covers
// bf16 and f32, the 16-byte path (n a multiple of 8, and with a partial last group), the
// element-by-element path (buffers not 16-byte aligned), n < 8, gate values up to +-30 and a few
// far beyond (sigmoid saturating: no NaN), and sentinels either side of every output (nothing
// written out of bounds). Built and run by check.sh.
#include "emu.h"

#include <algorithm>
#include <random>

#include "swiglu_emu.inc"

using bf = __nv_bfloat16;

static constexpr unsigned THREADS = 128;  // swiglu.rs launches with this block size
static constexpr size_t GUARD = 16;       // elements either side of each buffer

static bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class X>
static X from_f(float v) {
    if constexpr (std::is_same_v<X, bf>) return __float2bfloat16(v);
    else return v;
}
template <class X>
static double to_d(X v) {
    if constexpr (std::is_same_v<X, bf>) return (double)__bfloat162float(v);
    else return (double)v;
}
template <class X>
static bool same(X a, X b) {
    if constexpr (std::is_same_v<X, bf>) return a.bits == b.bits;
    else return std::memcmp(&a, &b, sizeof a) == 0;
}

// A buffer of n elements `shift` elements past a 16-byte boundary, GUARD sentinels either side.
template <class X>
struct Buf {
    std::vector<X> v;
    size_t shift;
    long long n;
    X sentinel = from_f<X>(12345.0f);
    Buf(long long n, size_t shift) : v(n + 2 * GUARD + 8), shift(shift), n(n) {
        std::fill(v.begin(), v.end(), sentinel);
        // std::vector storage is 16-byte aligned (operator new); GUARD * sizeof(X) keeps it so.
    }
    X* data() { return v.data() + GUARD + shift; }
    bool guards_intact() {
        for (size_t i = 0; i < GUARD + shift; i++)
            if (!same(v[i], sentinel)) return false;
        for (size_t i = GUARD + shift + n; i < v.size(); i++)
            if (!same(v[i], sentinel)) return false;
        return true;
    }
};

struct Err {
    double worst_rel = 0.0;  // max |err| / max |want|
    bool ok = true;
    void add(const char* what, long long i, double got, double want, double tol_rel, double scale) {
        const double e = std::fabs(got - want);
        if (!std::isfinite(got)) ok = false;
        worst_rel = std::max(worst_rel, e / std::max(scale, 1e-30));
        // Rounding of the result, plus f32 cancellation relative to the array's scale.
        if (!(e <= tol_rel * std::fabs(want) + 1e-5 * scale)) {
            if (ok) std::printf("  %s[%lld]: got %.8g want %.8g\n", what, i, got, want);
            ok = false;
        }
    }
};

template <class X>
static bool run(const char* what, long long n, size_t shift, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> wide(-30.0f, 30.0f);
    Buf<X> gate(n, shift), up(n, shift), grad(n, shift), out(n, shift), dg(n, shift), du(n, shift);
    for (long long i = 0; i < n; i++) {
        float a = i % 3 == 0 ? wide(rng) : 2.0f * nd(rng);
        if (i % 97 == 5) a = 100.0f;
        if (i % 97 == 6) a = -100.0f;
        if (i % 97 == 7) a = -1e4f;
        if (i % 97 == 8) a = 0.0f;
        if (i % 97 == 9) a = -1.2785f;  // d_gate's factor s * (1 + a * (1 - s)) crosses zero here
        gate.data()[i] = from_f<X>(a);
        up.data()[i] = from_f<X>(nd(rng));
        grad.data()[i] = from_f<X>(nd(rng));
    }
    std::vector<double> w_out(n), w_dg(n), w_du(n);
    double s_out = 0, s_dg = 0, s_du = 0;
    for (long long i = 0; i < n; i++) {
        const double a = to_d(gate.data()[i]), b = to_d(up.data()[i]), g = to_d(grad.data()[i]);
        const double s = 1.0 / (1.0 + std::exp(-a));
        w_out[i] = a * s * b;
        w_dg[i] = g * b * s * (1.0 + a * (1.0 - s));
        w_du[i] = g * a * s;
        s_out = std::max(s_out, std::fabs(w_out[i]));
        s_dg = std::max(s_dg, std::fabs(w_dg[i]));
        s_du = std::max(s_du, std::fabs(w_du[i]));
    }

    const int vec = aligned(gate.data()) && aligned(up.data()) && aligned(out.data()) && aligned(grad.data()) && aligned(dg.data()) && aligned(du.data());
    const unsigned blocks = (unsigned)(((n + 7) / 8 + THREADS - 1) / THREADS);
    launch(Dim3{blocks, 1, 1}, THREADS, 0, [&] {
        if constexpr (std::is_same_v<X, bf>) swiglu_fwd_bf16(gate.data(), up.data(), out.data(), n, vec);
        else swiglu_fwd_f32(gate.data(), up.data(), out.data(), n, vec);
    });
    launch(Dim3{blocks, 1, 1}, THREADS, 0, [&] {
        if constexpr (std::is_same_v<X, bf>) swiglu_bwd_bf16(gate.data(), up.data(), grad.data(), dg.data(), du.data(), n, vec);
        else swiglu_bwd_f32(gate.data(), up.data(), grad.data(), dg.data(), du.data(), n, vec);
    });

    // bf16: one rounding of the f32 result (2^-9 relative) plus f32 error; f32: a few ulps.
    const double tol = std::is_same_v<X, bf> ? 5e-3 : 2e-6;
    Err eo, eg, eu;
    for (long long i = 0; i < n; i++) {
        eo.add("out", i, to_d(out.data()[i]), w_out[i], tol, s_out);
        eg.add("d_gate", i, to_d(dg.data()[i]), w_dg[i], tol, s_dg);
        eu.add("d_up", i, to_d(du.data()[i]), w_du[i], tol, s_du);
    }
    bool ok = eo.ok && eg.ok && eu.ok;
    for (auto* b : {&gate, &up, &grad})
        if (!b->guards_intact()) ok = false, std::printf("  an input was written\n");
    for (auto* b : {&out, &dg, &du})
        if (!b->guards_intact()) ok = false, std::printf("  wrote outside an output\n");
    std::printf("%-5s n=%-6lld vec=%d: max |err|/max|want| out %.2e d_gate %.2e d_up %.2e %s\n", what, n, vec, eo.worst_rel, eg.worst_rel, eu.worst_rel,
                ok ? "ok" : "FAIL");
    return ok;
}

int main() {
    bool ok = true;
    unsigned seed = 1;
    // 16-byte path with whole groups, with a partial last group, n < 8; then misaligned buffers
    // (element by element).
    for (long long n : {4096LL, 3000LL, 2403LL, 13LL, 7LL, 1LL}) {
        ok &= run<bf>("bf16", n, 0, seed++);
        ok &= run<float>("f32", n, 0, seed++);
    }
    for (long long n : {4096LL, 2403LL, 7LL}) {
        ok &= run<bf>("bf16", n, 1, seed++);
        ok &= run<float>("f32", n, 3, seed++);
    }
    std::printf(ok ? "swiglu: all cases ok\n" : "swiglu: FAILED\n");
    return ok ? 0 : 1;
}
