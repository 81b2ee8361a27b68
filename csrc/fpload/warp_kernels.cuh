// Batched CUDA kernels of the warp (foreground moments, centres, fused warp).
#ifndef FPLOAD_WARP_KERNELS_CUH_
#define FPLOAD_WARP_KERNELS_CUH_

#include "fpload/kernels_common.cuh"
#include "fpload/warp_math.h"

namespace fpload {

__global__ void foreground_moments_kernel(const SampleIO *io, Moments *m, int threshold) {
  const SampleIO s = io[blockIdx.z];
  __shared__ unsigned long long sw[kBlockX * kBlockY], sx[kBlockX * kBlockY],  // NOLINT
      sy[kBlockX * kBlockY];                                                     // NOLINT
  int t = threadIdx.y * kBlockX + threadIdx.x;
  unsigned long long aw = 0, ax = 0, ay = 0;  // NOLINT
  for (int y = blockIdx.y * kBlockY + threadIdx.y; y < s.h; y += gridDim.y * kBlockY) {
    for (int x = blockIdx.x * kBlockX + threadIdx.x; x < s.w; x += gridDim.x * kBlockX) {
      int wt = threshold - static_cast<int>(s.in[y * s.w + x]);
      if (wt > 0) {
        aw += wt;
        ax += static_cast<unsigned long long>(wt) * x;  // NOLINT
        ay += static_cast<unsigned long long>(wt) * y;  // NOLINT
      }
    }
  }
  sw[t] = aw;
  sx[t] = ax;
  sy[t] = ay;
  __syncthreads();
  for (int k = kBlockX * kBlockY / 2; k > 0; k >>= 1) {
    if (t < k) {
      sw[t] += sw[t + k];
      sx[t] += sx[t + k];
      sy[t] += sy[t + k];
    }
    __syncthreads();
  }
  if (t == 0 && sw[0] != 0) {
    atomicAdd(&m[blockIdx.z].sw, sw[0]);
    atomicAdd(&m[blockIdx.z].sx, sx[0]);
    atomicAdd(&m[blockIdx.z].sy, sy[0]);
  }
}

__global__ void resolve_centers_kernel(const SampleIO *io, const Moments *m, WarpParams *p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) center_from_moments(m[i], io[i].h, io[i].w, p[i].cx, p[i].cy);
}

__global__ void warp_kernel(const SampleIO *__restrict__ io, const WarpParams *__restrict__ params,
                            int nearest, float fill) {
  const SampleIO &s = io[blockIdx.z];
  int x = blockIdx.x * kBlockX + threadIdx.x;
  int y = blockIdx.y * kBlockY + threadIdx.y;
  if (x >= s.ow || y >= s.oh) return;
  const WarpParams &p = params[blockIdx.z];
  static_cast<uint8_t *>(s.out)[y * s.ow + x] =
      warp_pixel(p, s.in, s.h, s.w, s.oh, s.ow, x, y, nearest != 0, fill);
}

// launcher: every pointer is device memory
inline void launch_warp(const SampleIO *io, WarpParams *params, Moments *moments, int n,
                        int max_h, int max_w, int max_oh, int max_ow, const WarpArgs &a,
                        cudaStream_t stream) {
  if (n == 0) return;
  dim3 block(kBlockX, kBlockY);
  if (a.center_mode == kCenterForeground) {
    FPLOAD_CUDA_CHECK(cudaMemsetAsync(moments, 0, sizeof(Moments) * n, stream));
    dim3 g = batch_grid(max_w, max_h, n);
    g.x = g.x < 4 ? g.x : 4;  // grid-stride: fewer atomics
    g.y = g.y < 8 ? g.y : 8;
    foreground_moments_kernel<<<g, block, 0, stream>>>(io, moments, a.fg_threshold);
    FPLOAD_CUDA_CHECK(cudaGetLastError());
    resolve_centers_kernel<<<(n + 127) / 128, 128, 0, stream>>>(io, moments, params, n);
    FPLOAD_CUDA_CHECK(cudaGetLastError());
  }
  warp_kernel<<<batch_grid(max_ow, max_oh, n), block, 0, stream>>>(io, params, a.nearest ? 1 : 0,
                                                                    a.fill);
  FPLOAD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fpload

#endif  // FPLOAD_WARP_KERNELS_CUH_
