// The embedding's weight gradient for rm-distiller: dW[ids[t], :] += dOut[t, :] for every token t.
//
// Compiled at run time by NVRTC. Layouts, all contiguous: dOut [T, H] bf16 or f32; ids [T] i32 or
// i64; acc [V, H] f32, zeroed by the caller (the result itself for f32 weights); dW [V, H] bf16.
// Ids outside [0, V) are skipped (burn's gather leaves them undefined): nothing is written for them.
// `vec` (H a multiple of 8, every pointer 16-byte aligned; the caller checks) turns on 16-byte
// loads and stores and, on sm_90+, 4-wide atomic adds.
#include "common.cuh"

// `red.global.add.v4.f32` needs sm_90 and PTX ISA 8.1 (CUDA 12.1).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && \
    (__CUDACC_VER_MAJOR__ > 12 || (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ >= 1))
#define RED_V4 1
#else
#define RED_V4 0
#endif

// p[0..4) += (a, b, c, d); p 16-byte aligned.
__device__ void add4(float* p, float a, float b, float c, float d) {
#if RED_V4
    asm volatile("{ .reg .u64 g; cvta.to.global.u64 g, %0; red.global.add.v4.f32 [g], {%1, %2, %3, %4}; }" ::"l"(p), "f"(a), "f"(b), "f"(c),
                 "f"(d)
                 : "memory");
#else
    atomicAdd(p, a);
    atomicAdd(p + 1, b);
    atomicAdd(p + 2, c);
    atomicAdd(p + 3, d);
#endif
}

// One thread per (token, 8 columns): consecutive threads cover a token's row left to right, so
// loads and atomics of a warp are contiguous.
template <class G>
__device__ void scatter(const G* dout, const void* ids, int id64, float* acc, long long T, long long V, long long H, int vec) {
    const long long chunks = (H + 7) / 8;
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * chunks) return;
    const long long t = i / chunks, c0 = (i % chunks) * 8;
    const long long id = id64 ? reinterpret_cast<const long long*>(ids)[t] : (long long)reinterpret_cast<const int*>(ids)[t];
    if (id < 0 || id >= V) return;
    const G* src = dout + t * H + c0;
    float* dst = acc + id * H + c0;
    if (vec) {
        float v[8];
        load8(src, v);
        add4(dst, v[0], v[1], v[2], v[3]);
        add4(dst + 4, v[4], v[5], v[6], v[7]);
    } else {
        for (long long c = 0; c < 8 && c0 + c < H; c++) atomicAdd(dst + c, to_float(src[c]));
    }
}

extern "C" __global__ void embedding_scatter_bf16(const bf* dout, const void* ids, int id64, float* acc, long long T, long long V, long long H, int vec) {
    scatter(dout, ids, id64, acc, T, V, H, vec);
}

extern "C" __global__ void embedding_scatter_f32(const float* dout, const void* ids, int id64, float* acc, long long T, long long V, long long H, int vec) {
    scatter(dout, ids, id64, acc, T, V, H, vec);
}

// acc [n] f32 -> out [n] bf16 (round to nearest even), 8 values per thread.
extern "C" __global__ void embedding_to_bf16(const float* acc, bf* out, long long n, int vec) {
    const long long i0 = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i0 >= n) return;
    if (vec) {
        float v[8];
        load8(acc + i0, v);
        store8(out + i0, v);
    } else {
        for (long long i = i0; i < i0 + 8 && i < n; i++) out[i] = __float2bfloat16(acc[i]);
    }
}
