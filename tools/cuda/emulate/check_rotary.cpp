// Runs crates/rmd-kernels/src/cuda/rotary.cu on the CPU (emu.h): the rotation of a
// [rows, L, heads, d] projection read through [rows, heads, L, d] strides, written
// sequence-major, forward and backward (the transposed rotation), vs a float64 reference with
// the tables rounded to bf16. Built and run by check.sh.
#include "emu.h"

#include <random>

#include "rotary_emu.inc"
#include "check.h"

static bool run(int rows, int heads, int L, int d, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ud(0.0f, 50.0f);
    const size_t n = (size_t)rows * heads * L * d;
    std::vector<bf> x(n), y(n), dx(n);
    for (auto& v : x) v = __float2bfloat16(nd(rng));
    std::vector<float> cs((size_t)rows * L * d), sn(cs.size());
    for (size_t k = 0; k < cs.size(); k++) {
        const float a = ud(rng);
        cs[k] = std::cos(a), sn[k] = std::sin(a);
    }
    // Both x and the outputs are [rows, L, heads, d] in memory.
    const Strides s{(long long)L * heads * d, d, (long long)heads * d};
    const long long quads = (long long)n / 4;
    const unsigned blocks = (unsigned)((quads + 127) / 128);
    launch(Dim3{blocks, 1, 1}, 128, 0, [&] { rotary(x.data(), s, cs.data(), sn.data(), (long long)L * d, d, y.data(), s, heads, L, d, 0, quads); });
    launch(Dim3{blocks, 1, 1}, 128, 0, [&] { rotary(x.data(), s, cs.data(), sn.data(), (long long)L * d, d, dx.data(), s, heads, L, d, 1, quads); });
    auto f = [](bf v) { return (double)__bfloat162float(v); };
    auto t = [](float v) { return (double)__bfloat162float(__float2bfloat16(v)); };
    std::vector<double> wy(n), wd(n), gy(n), gd(n);
    const int half = d / 2;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < L; i++) {
                const size_t o = s.at(r, h, i), to = ((size_t)r * L + i) * d;
                for (int c = 0; c < d; c++) {
                    const double rot = c < half ? -f(x[o + c + half]) : f(x[o + c - half]);
                    wy[o + c] = f(x[o + c]) * t(cs[to + c]) + rot * t(sn[to + c]);
                    const double back = c < half ? f(x[o + c + half]) * t(sn[to + c + half]) : -f(x[o + c - half]) * t(sn[to + c - half]);
                    wd[o + c] = f(x[o + c]) * t(cs[to + c]) + back;
                }
            }
    for (size_t k = 0; k < n; k++) gy[k] = f(y[k]), gd[k] = f(dx[k]);
    const double ey = max_rel(gy, wy), ed = max_rel(gd, wd);
    const bool ok = ey < 1e-2 && ed < 1e-2;
    std::printf("rotary rows %d heads %d L %d d %d: forward %.2e backward %.2e %s\n", rows, heads, L, d, ey, ed, ok ? "ok" : "FAILED");
    return ok;
}

int main() {
    bool ok = true;
    ok &= run(2, 3, 37, 64, 1);
    ok &= run(1, 2, 5, 128, 2);
    ok &= run(3, 1, 4, 4, 3);  // the smallest head dim the kernel takes
    return ok ? 0 : 1;
}
