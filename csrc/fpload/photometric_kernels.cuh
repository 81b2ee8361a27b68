// Batched CUDA kernel of the fused photometric operator.
#ifndef FPLOAD_PHOTOMETRIC_KERNELS_CUH_
#define FPLOAD_PHOTOMETRIC_KERNELS_CUH_

#include <cuda_fp16.h>

#include "fpload/kernels_common.cuh"
#include "fpload/photometric_math.h"

namespace fpload {

struct StoreU8 {
  __device__ void operator()(uint8_t *o, float t, float, float) const { *o = to_u8(t); }
};
struct StoreF32 {
  __device__ void operator()(float *o, float t, float mean, float inv_std) const {
    *o = (t - mean) * inv_std;
  }
};
struct StoreF16 {
  __device__ void operator()(__half *o, float t, float mean, float inv_std) const {
    *o = __float2half_rn((t - mean) * inv_std);
  }
};

template <typename Out, typename Store>
__global__ void photometric_kernel(const SampleIO *__restrict__ io,
                                   const PhotometricParams *__restrict__ params, float mean,
                                   float inv_std) {
  const SampleIO &s = io[blockIdx.z];
  const PhotometricParams &p = params[blockIdx.z];
  __shared__ float lut[kLutSize];
  int t = threadIdx.y * kBlockX + threadIdx.x;
  for (int i = t; i < kLutSize; i += kBlockX * kBlockY) lut[i] = p.lut[i];
  __syncthreads();
  int x = blockIdx.x * kBlockX + threadIdx.x;
  int y = blockIdx.y * kBlockY + threadIdx.y;
  if (x >= s.w || y >= s.h) return;
  const uint8_t *r1 = s.in + y * s.w;
  const uint8_t *r0 = s.in + imax(y - 1, 0) * s.w;
  const uint8_t *r2 = s.in + imin(y + 1, s.h - 1) * s.w;
  float v = (p.morph != kMorphNone || p.blur > 0.f)
                ? photometric_spatial(p, r0, r1, r2, imax(x - 1, 0), x, imin(x + 1, s.w - 1))
                : static_cast<float>(r1[x]);
  float tone = photometric_tone(p, lut, v, static_cast<uint32_t>(y) * s.w + x);
  Store()(static_cast<Out *>(s.out) + y * s.w + x, tone, mean, inv_std);
}

/// out_kind: 0 uint8, 1 float32, 2 float16.
inline void launch_photometric(const SampleIO *io, const PhotometricParams *params, int n,
                               int max_h, int max_w, int out_kind, float mean, float inv_std,
                               cudaStream_t stream) {
  if (n == 0) return;
  dim3 g = batch_grid(max_w, max_h, n), b(kBlockX, kBlockY);
  if (out_kind == 0)
    photometric_kernel<uint8_t, StoreU8><<<g, b, 0, stream>>>(io, params, mean, inv_std);
  else if (out_kind == 1)
    photometric_kernel<float, StoreF32><<<g, b, 0, stream>>>(io, params, mean, inv_std);
  else
    photometric_kernel<__half, StoreF16><<<g, b, 0, stream>>>(io, params, mean, inv_std);
  FPLOAD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fpload

#endif  // FPLOAD_PHOTOMETRIC_KERNELS_CUH_
