// Shared pieces of the batched CUDA kernels: one launch per batch (grid.z = sample), images of
// different sizes in one batch (blocks outside a sample's extent exit). Plain CUDA, no DALI:
// the operators in csrc/*.cu and the standalone check csrc/tests/kernel_check.cu use them.
#ifndef FPLOAD_KERNELS_COMMON_CUH_
#define FPLOAD_KERNELS_COMMON_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "fpload/common.h"
#include "fpload/cuda_check.h"

namespace fpload {

/// One sample of a batch: input h x w (uint8), output oh x ow (type per kernel).
struct SampleIO {
  const uint8_t *in;
  void *out;
  int h, w, oh, ow;
};

constexpr int kBlockX = 32, kBlockY = 8, kOccPix = 8;

inline dim3 batch_grid(int max_w, int max_h, int n, int px_per_thread = 1) {
  return dim3((max_w + kBlockX * px_per_thread - 1) / (kBlockX * px_per_thread),
              (max_h + kBlockY - 1) / kBlockY, n);
}

}  // namespace fpload

#endif  // FPLOAD_KERNELS_COMMON_CUH_
