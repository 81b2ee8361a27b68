// Shared helpers for host (C++) and device (CUDA) code of the fpload operators.
//
// Everything here is plain arithmetic usable from both backends: functions are marked
// FPLOAD_HD, which is `__host__ __device__` under nvcc and `inline` under a host compiler.
// Float expressions are written in a fixed evaluation order and both compilers are told not
// to contract them into FMAs (-ffp-contract=off / --fmad=false), so CPU, GPU and the NumPy
// reference in fpload/ops/_reference.py compute the same bits.
#ifndef FPLOAD_COMMON_H_
#define FPLOAD_COMMON_H_

#include <cstdint>

#if defined(__CUDACC__)
#define FPLOAD_HD __host__ __device__ __forceinline__
#else
#define FPLOAD_HD inline
#endif

/// CPU entry points (the per-sample / per-row-block loops of the CPU backend) are compiled
/// twice by GCC on x86-64: a portable baseline and an x86-64-v3 (AVX2) clone, picked at load
/// time by the CPU the plugin runs on (an ifunc). Both evaluate the same float expressions
/// (no FMA contraction, no reassociation), so they give the same bits. Off under nvcc, other
/// compilers/architectures, or with -DFPLOAD_NO_CPU_CLONES.
#if !defined(__CUDACC__) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(FPLOAD_NO_CPU_CLONES)
#define FPLOAD_CPU_DISPATCH __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FPLOAD_CPU_DISPATCH
#endif

#if defined(__GNUC__) || defined(__CUDACC__)
#define FPLOAD_RESTRICT __restrict__
#else
#define FPLOAD_RESTRICT
#endif

namespace fpload {

/// Written as two independent selects (the same result as `v < lo ? lo : (v > hi ? hi : v)`
/// for lo <= hi, NaN included) so that CPU loops using it if-convert and vectorise.
FPLOAD_HD float clampf(float v, float lo, float hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

FPLOAD_HD int clampi(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

FPLOAD_HD int imax(int a, int b) { return a > b ? a : b; }
FPLOAD_HD int imin(int a, int b) { return a < b ? a : b; }

/// floor / ceil for |v| < 2^31 without a libm call (baseline x86-64 has no SSE4.1 roundss);
/// bit-identical to floorf / ceilf in that range.
/// Branch-free (t - 0 == t exactly), so CPU loops using them vectorise.
FPLOAD_HD float floor_f(float v) {
  float t = static_cast<float>(static_cast<int>(v));
  return t - (t > v ? 1.0f : 0.0f);
}
FPLOAD_HD float ceil_f(float v) {
  float t = static_cast<float>(static_cast<int>(v));
  return t + (t < v ? 1.0f : 0.0f);
}

/// Round a value already clamped to [0, 255] to the nearest grey level (half up).
FPLOAD_HD uint8_t to_u8(float v) {
  return static_cast<uint8_t>(clampf(v, 0.0f, 255.0f) + 0.5f);
}

}  // namespace fpload

#endif  // FPLOAD_COMMON_H_
