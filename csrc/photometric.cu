// GPU backend of FploadPhotometric: one batched launch.
#include "fpload/photometric_kernels.cuh"
#include "gpu_staging.cuh"
#include "photometric.h"

namespace fpload {

template <>
void FploadPhotometric<dali::GPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::GPUBackend>(0);
  auto &out = ws.Output<dali::GPUBackend>(0);
  out.SetLayout("HWC");
  int n = in.num_samples();
  cudaStream_t stream = ws.stream();
  auto b = stage_batch<void>(gpu_, in, out, params_, stream);
  int kind = dtype_ == DALI_UINT8 ? 0 : (dtype_ == DALI_FLOAT ? 1 : 2);
  launch_photometric(b.io, b.params, n, b.max_h, b.max_w, kind, args_.mean, inv_std_, stream);
  b.release(stream);
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadPhotometric, ::fpload::FploadPhotometric<::dali::GPUBackend>,
                       ::dali::GPU);
