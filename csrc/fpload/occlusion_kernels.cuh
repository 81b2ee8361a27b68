// Batched CUDA kernel of the occlusion operator.
#ifndef FPLOAD_OCCLUSION_KERNELS_CUH_
#define FPLOAD_OCCLUSION_KERNELS_CUH_

#include "fpload/kernels_common.cuh"
#include "fpload/occlusion_math.h"

namespace fpload {

__global__ void occlusion_kernel(const SampleIO *__restrict__ io,
                                 const OcclusionParams *__restrict__ params, uint8_t fill) {
  const SampleIO &s = io[blockIdx.z];
  int x0 = (blockIdx.x * kBlockX + threadIdx.x) * kOccPix;
  int y = blockIdx.y * kBlockY + threadIdx.y;
  if (x0 >= s.w || y >= s.h) return;
  const OcclusionParams &p = params[blockIdx.z];
  int k0, k1;
  kept_row(p, y, s.w, k0, k1);
  int b0[kMaxBlobs], b1[kMaxBlobs];
  for (int k = 0; k < p.n_blobs; ++k) ellipse_row(p.blobs[k], y, s.w, b0[k], b1[k]);
  const uint8_t *in = s.in + y * s.w;
  uint8_t *out = static_cast<uint8_t *>(s.out) + y * s.w;
  int xe = imin(x0 + kOccPix, s.w);
  for (int x = x0; x < xe; ++x) {
    bool keep = x >= k0 && x < k1;
    for (int k = 0; k < p.n_erase && keep; ++k) {
      const Rect &r = p.erase[k];
      keep = !(x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1);
    }
    for (int k = 0; k < p.n_blobs && keep; ++k) keep = !(x >= b0[k] && x < b1[k]);
    out[x] = keep ? in[x] : fill;
  }
}

inline void launch_occlusion(const SampleIO *io, const OcclusionParams *params, int n, int max_h,
                             int max_w, uint8_t fill, cudaStream_t stream) {
  if (n == 0) return;
  occlusion_kernel<<<batch_grid(max_w, max_h, n, kOccPix), dim3(kBlockX, kBlockY), 0, stream>>>(
      io, params, fill);
  FPLOAD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace fpload

#endif  // FPLOAD_OCCLUSION_KERNELS_CUH_
