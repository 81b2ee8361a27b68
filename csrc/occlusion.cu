// GPU backend of FploadOcclusion: one batched launch.
#include "fpload/occlusion_kernels.cuh"
#include "occlusion.h"

namespace fpload {

template <>
void FploadOcclusion<dali::GPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::GPUBackend>(0);
  auto &out = ws.Output<dali::GPUBackend>(0);
  out.SetLayout("HWC");
  int n = in.num_samples();
  if (!gpu_) gpu_ = std::make_shared<DeviceStaging>();
  auto &st = *std::static_pointer_cast<DeviceStaging>(gpu_);
  size_t off_p = align_up(sizeof(SampleIO) * n, 64);
  size_t bytes = off_p + sizeof(OcclusionParams) * n;
  auto *host = static_cast<char *>(st.host(bytes));
  auto *io = reinterpret_cast<SampleIO *>(host);
  int max_h = 0, max_w = 0;
  for (int i = 0; i < n; ++i) {
    auto s = in.shape().tensor_shape_span(i);
    int h = static_cast<int>(s[0]), w = static_cast<int>(s[1]);
    io[i] = SampleIO{in.tensor<uint8_t>(i), out.mutable_tensor<uint8_t>(i), h, w, h, w};
    max_h = std::max(max_h, h);
    max_w = std::max(max_w, w);
  }
  std::memcpy(host + off_p, params_.data(), sizeof(OcclusionParams) * n);
  cudaStream_t stream = ws.stream();
  st.upload(bytes, stream);
  char *dev = static_cast<char *>(st.device());
  launch_occlusion(reinterpret_cast<SampleIO *>(dev),
                   reinterpret_cast<OcclusionParams *>(dev + off_p), n, max_h, max_w, args_.fill,
                   stream);
  st.release(stream);
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadOcclusion, ::fpload::FploadOcclusion<::dali::GPUBackend>, ::dali::GPU);
