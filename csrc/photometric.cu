// GPU backend of FploadPhotometric: one batched launch.
#include "fpload/photometric_kernels.cuh"
#include "photometric.h"

namespace fpload {

template <>
void FploadPhotometric<dali::GPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::GPUBackend>(0);
  auto &out = ws.Output<dali::GPUBackend>(0);
  out.SetLayout("HWC");
  int n = in.num_samples();
  if (!gpu_) gpu_ = std::make_shared<DeviceStaging>();
  auto &st = *std::static_pointer_cast<DeviceStaging>(gpu_);
  size_t off_p = align_up(sizeof(SampleIO) * n, 64);
  size_t bytes = off_p + sizeof(PhotometricParams) * n;
  auto *host = static_cast<char *>(st.host(bytes));
  auto *io = reinterpret_cast<SampleIO *>(host);
  int max_h = 0, max_w = 0;
  for (int i = 0; i < n; ++i) {
    auto s = in.shape().tensor_shape_span(i);
    int h = static_cast<int>(s[0]), w = static_cast<int>(s[1]);
    io[i] = SampleIO{in.tensor<uint8_t>(i), out.raw_mutable_tensor(i), h, w, h, w};
    max_h = std::max(max_h, h);
    max_w = std::max(max_w, w);
  }
  std::memcpy(host + off_p, params_.data(), sizeof(PhotometricParams) * n);
  cudaStream_t stream = ws.stream();
  st.upload(bytes, stream);
  char *dev = static_cast<char *>(st.device());
  int kind = dtype_ == DALI_UINT8 ? 0 : (dtype_ == DALI_FLOAT ? 1 : 2);
  launch_photometric(reinterpret_cast<SampleIO *>(dev),
                     reinterpret_cast<PhotometricParams *>(dev + off_p), n, max_h, max_w, kind,
                     args_.mean, inv_std_, stream);
  st.release(stream);
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadPhotometric, ::fpload::FploadPhotometric<::dali::GPUBackend>,
                       ::dali::GPU);
