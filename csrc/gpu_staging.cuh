// Host-side staging of one batch for the operators' GPU backends (csrc/*.cu only; needs DALI).
// Every GPU RunImpl does the same thing: describe each sample (pointers and extents) as a
// SampleIO, put those and the operator's per-sample parameters in one pinned block, upload it
// with one copy, launch, and mark the block busy until the launch has read it. stage_batch does
// all but the launch; call StagedBatch::release(stream) right after the launch.
#ifndef FPLOAD_GPU_STAGING_CUH_
#define FPLOAD_GPU_STAGING_CUH_

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "dali/pipeline/data/tensor_list.h"
#include "fpload/cuda_check.h"
#include "fpload/kernels_common.cuh"

namespace fpload {

/// Device pointers and largest extents of a batch staged by stage_batch.
template <typename Params>
struct StagedBatch {
  SampleIO *io;          ///< n SampleIO on the device
  Params *params;        ///< n Params on the device (copied from the operator's params_)
  void *scratch;         ///< `scratch_bytes` of device memory after them, not initialised
  int max_h, max_w;      ///< largest input extents of the batch
  int max_oh, max_ow;    ///< largest output extents of the batch
  DeviceStaging *staging;

  /// Record that the launches reading these buffers are queued (call right after them).
  void release(cudaStream_t stream) const { staging->release(stream); }
};

/// Stage `in`/`out` (HWC uint8 in; `OutT` out, `void` for an output whose type varies) and
/// `params` (one per sample) through the pinned buffer kept in `slot` (created on first use),
/// uploaded on `stream`. `scratch_bytes` more of device memory follow the parameters.
///
///   auto b = stage_batch<uint8_t>(gpu_, in, out, params_, ws.stream());
///   launch_occlusion(b.io, b.params, n, b.max_h, b.max_w, args_.fill, ws.stream());
///   b.release(ws.stream());
template <typename OutT, typename Params>
StagedBatch<Params> stage_batch(std::shared_ptr<void> &slot,
                                const dali::TensorList<dali::GPUBackend> &in,
                                dali::TensorList<dali::GPUBackend> &out,
                                const std::vector<Params> &params, cudaStream_t stream,
                                size_t scratch_bytes = 0) {
  int n = in.num_samples();
  if (!slot) slot = std::make_shared<DeviceStaging>();
  auto &st = *std::static_pointer_cast<DeviceStaging>(slot);
  size_t off_p = align_up(sizeof(SampleIO) * n, 64);
  size_t upload = off_p + sizeof(Params) * n;
  size_t off_s = scratch_bytes ? align_up(upload, 64) : upload;
  auto *host = static_cast<char *>(st.host(off_s + scratch_bytes));
  auto *io = reinterpret_cast<SampleIO *>(host);
  StagedBatch<Params> b{};
  for (int i = 0; i < n; ++i) {
    auto is = in.shape().tensor_shape_span(i);
    auto os = out.shape().tensor_shape_span(i);
    void *o;
    if constexpr (std::is_void_v<OutT>) {
      o = out.raw_mutable_tensor(i);
    } else {
      o = out.mutable_tensor<OutT>(i);
    }
    io[i] = SampleIO{in.tensor<uint8_t>(i), o, static_cast<int>(is[0]),
                     static_cast<int>(is[1]), static_cast<int>(os[0]), static_cast<int>(os[1])};
    b.max_h = std::max(b.max_h, io[i].h);
    b.max_w = std::max(b.max_w, io[i].w);
    b.max_oh = std::max(b.max_oh, io[i].oh);
    b.max_ow = std::max(b.max_ow, io[i].ow);
  }
  std::memcpy(host + off_p, params.data(), sizeof(Params) * n);
  st.upload(upload, stream);
  char *dev = static_cast<char *>(st.device());
  b.io = reinterpret_cast<SampleIO *>(dev);
  b.params = reinterpret_cast<Params *>(dev + off_p);
  b.scratch = scratch_bytes ? dev + off_s : nullptr;
  b.staging = &st;
  return b;
}

}  // namespace fpload

#endif  // FPLOAD_GPU_STAGING_CUH_
