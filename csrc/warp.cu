// GPU backend of FploadWarp: one batched launch (plus a moments pass for foreground centres).
#include "fpload/warp_kernels.cuh"
#include "gpu_staging.cuh"
#include "warp.h"

namespace fpload {

template <>
void FploadWarp<dali::GPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::GPUBackend>(0);
  auto &out = ws.Output<dali::GPUBackend>(0);
  out.SetLayout("HWC");
  int n = in.num_samples();
  cudaStream_t stream = ws.stream();
  auto b = stage_batch<uint8_t>(gpu_, in, out, params_, stream, sizeof(Moments) * n);
  launch_warp(b.io, b.params, static_cast<Moments *>(b.scratch), n, b.max_h, b.max_w, b.max_oh,
              b.max_ow, args_, stream);
  b.release(stream);
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadWarp, ::fpload::FploadWarp<::dali::GPUBackend>, ::dali::GPU);
