// Runs crates/rmd-kernels/src/cuda/embedding.cu on the CPU (emu.h) and compares the embedding's
// weight gradient with a float64 reference: many repeated ids (concurrent atomic adds), ids out of
// range (skipped, nothing written outside the accumulator), bf16 and f32 output gradients, i32 and
// i64 ids, and both the vectorised (H % 8 == 0) and the column-by-column paths. Built and run by
// check.sh. Without __CUDA_ARCH__ the 4-wide atomic is emulated by four scalar ones.
#include "emu.h"

#include <random>

#include "embedding_emu.inc"

using bf = __nv_bfloat16;

static constexpr unsigned THREADS = 128;  // embedding.rs launches with this block size
static constexpr size_t GUARD = 64;       // floats either side of the accumulator

static bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class G, class I>
static bool run(const char* what, long long T, long long V, long long H, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    // Ids from a tenth of the vocabulary (each repeated ~10 times), and a few out of range.
    std::uniform_int_distribution<long long> pick(0, V / 10);
    std::vector<I> ids(T);
    for (long long t = 0; t < T; t++) ids[t] = (I)pick(rng);
    ids[3] = (I)-1;
    ids[7] = (I)V;
    ids[11] = std::is_same_v<I, long long> ? (I)(1LL << 40) : (I)(V + 1000);
    ids[T - 1] = (I)(V - 1);
    std::vector<G> dout(T * H);
    for (auto& x : dout) {
        if constexpr (std::is_same_v<G, bf>) x = __float2bfloat16(nd(rng));
        else x = nd(rng);
    }
    auto val = [&](long long i) {
        if constexpr (std::is_same_v<G, bf>) return (double)__bfloat162float(dout[i]);
        else return (double)dout[i];
    };
    std::vector<double> want(V * H, 0.0), mag(V * H, 0.0);
    for (long long t = 0; t < T; t++) {
        const long long r = (long long)ids[t];
        if (r < 0 || r >= V) continue;
        for (long long c = 0; c < H; c++) {
            want[r * H + c] += val(t * H + c);
            mag[r * H + c] += std::fabs(val(t * H + c));
        }
    }

    const float sentinel = 12345.0f;
    std::vector<float> buf(V * H + 2 * GUARD, sentinel);
    float* acc = buf.data() + GUARD;
    std::fill(acc, acc + V * H, 0.0f);  // the caller's memset
    std::vector<bf> out(V * H);
    const int vec = H % 8 == 0 && aligned(dout.data()) && aligned(acc) && aligned(out.data());
    const int id64 = sizeof(I) == 8;
    const long long chunks = (H + 7) / 8;
    launch(Dim3{(unsigned)((T * chunks + THREADS - 1) / THREADS), 1, 1}, THREADS, 0, [&] {
        if constexpr (std::is_same_v<G, bf>) embedding_scatter_bf16(dout.data(), ids.data(), id64, acc, T, V, H, vec);
        else embedding_scatter_f32(dout.data(), ids.data(), id64, acc, T, V, H, vec);
    });
    const long long n = V * H;
    launch(Dim3{(unsigned)(((n + 7) / 8 + THREADS - 1) / THREADS), 1, 1}, THREADS, 0, [&] { embedding_to_bf16(acc, out.data(), n, vec); });

    bool ok = true;
    for (size_t g = 0; g < GUARD; g++) ok &= buf[g] == sentinel && buf[GUARD + n + g] == sentinel;
    if (!ok) std::printf("%s: wrote outside the accumulator\n", what);
    double worst = 0.0;
    for (long long i = 0; i < n; i++) {
        // f32 sums in any order: within a few ulps of the sum of magnitudes.
        const double err = std::fabs(acc[i] - want[i]);
        worst = std::max(worst, err / std::max(mag[i], 1e-30));
        if (err > 1e-5 * mag[i] || (mag[i] == 0.0 && acc[i] != 0.0f)) ok = false;
        // bf16: the accumulator rounded to nearest even.
        if (out[i].bits != __float2bfloat16(acc[i]).bits) ok = false;
    }
    std::printf("%-28s T=%lld V=%lld H=%lld vec=%d: max |err|/sum|terms| %.2e %s\n", what, T, V, H, vec, worst, ok ? "ok" : "FAIL");
    return ok;
}

int main() {
    bool ok = true;
    for (long long H : {24LL, 20LL, 8LL, 3LL}) {
        ok &= run<bf, int>("bf16 grad, i32 ids", 300, 50, H, 1);
        ok &= run<float, int>("f32 grad, i32 ids", 300, 50, H, 2);
        ok &= run<bf, long long>("bf16 grad, i64 ids", 257, 41, H, 3);
        ok &= run<float, long long>("f32 grad, i64 ids", 257, 41, H, 4);
    }
    std::printf(ok ? "embedding: all cases ok\n" : "embedding: FAILED\n");
    return ok ? 0 : 1;
}
