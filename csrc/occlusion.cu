// GPU backend of FploadOcclusion: one batched launch.
#include "fpload/occlusion_kernels.cuh"
#include "gpu_staging.cuh"
#include "occlusion.h"

namespace fpload {

template <>
void FploadOcclusion<dali::GPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::GPUBackend>(0);
  auto &out = ws.Output<dali::GPUBackend>(0);
  out.SetLayout("HWC");
  int n = in.num_samples();
  cudaStream_t stream = ws.stream();
  auto b = stage_batch<uint8_t>(gpu_, in, out, params_, stream);
  launch_occlusion(b.io, b.params, n, b.max_h, b.max_w, args_.fill, stream);
  b.release(stream);
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadOcclusion, ::fpload::FploadOcclusion<::dali::GPUBackend>, ::dali::GPU);
