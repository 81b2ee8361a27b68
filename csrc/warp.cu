// GPU backend of FploadWarp: one batched launch (plus a moments pass for foreground centres).
#include "fpload/warp_kernels.cuh"
#include "warp.h"

namespace fpload {

template <>
void FploadWarp<dali::GPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::GPUBackend>(0);
  auto &out = ws.Output<dali::GPUBackend>(0);
  out.SetLayout("HWC");
  int n = in.num_samples();
  if (!gpu_) gpu_ = std::make_shared<DeviceStaging>();
  auto &st = *std::static_pointer_cast<DeviceStaging>(gpu_);
  size_t off_p = align_up(sizeof(SampleIO) * n, 64);
  size_t off_m = align_up(off_p + sizeof(WarpParams) * n, 64);
  size_t bytes = off_m + sizeof(Moments) * n;
  auto *host = static_cast<char *>(st.host(bytes));
  auto *io = reinterpret_cast<SampleIO *>(host);
  int max_h = 0, max_w = 0, max_oh = 0, max_ow = 0;
  for (int i = 0; i < n; ++i) {
    auto is = in.shape().tensor_shape_span(i);
    auto os = out.shape().tensor_shape_span(i);
    io[i] = SampleIO{in.tensor<uint8_t>(i), out.mutable_tensor<uint8_t>(i),
                     static_cast<int>(is[0]), static_cast<int>(is[1]),
                     static_cast<int>(os[0]), static_cast<int>(os[1])};
    max_h = std::max(max_h, io[i].h);
    max_w = std::max(max_w, io[i].w);
    max_oh = std::max(max_oh, io[i].oh);
    max_ow = std::max(max_ow, io[i].ow);
  }
  std::memcpy(host + off_p, params_.data(), sizeof(WarpParams) * n);
  cudaStream_t stream = ws.stream();
  st.upload(off_m, stream);
  char *dev = static_cast<char *>(st.device());
  launch_warp(reinterpret_cast<SampleIO *>(dev), reinterpret_cast<WarpParams *>(dev + off_p),
              reinterpret_cast<Moments *>(dev + off_m), n, max_h, max_w, max_oh, max_ow, args_,
              stream);
  st.release(stream);
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadWarp, ::fpload::FploadWarp<::dali::GPUBackend>, ::dali::GPU);
