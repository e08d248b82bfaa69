// What the check_*.cpp harnesses share (after emu.h and the kernel source).
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

// max |got - want| / max |want|, infinite when anything got is not finite.
inline double max_rel(const std::vector<double>& got, const std::vector<double>& want) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < got.size(); i++) {
        if (!std::isfinite(got[i])) return INFINITY;
        num = std::max(num, std::fabs(got[i] - want[i]));
        den = std::max(den, std::fabs(want[i]));
    }
    return num / std::max(den, 1e-30);
}
