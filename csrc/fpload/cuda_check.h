// CUDA error checking and a pinned staging buffer for per-batch parameters (host API only).
#ifndef FPLOAD_CUDA_CHECK_H_
#define FPLOAD_CUDA_CHECK_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#define FPLOAD_CUDA_CHECK(expr)                                                        \
  do {                                                                                  \
    cudaError_t fpload_err_ = (expr);                                                   \
    if (fpload_err_ != cudaSuccess)                                                     \
      throw std::runtime_error(std::string("fpload: CUDA error in ") + #expr + ": " +  \
                               cudaGetErrorString(fpload_err_));                        \
  } while (0)

namespace fpload {

inline size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/// Pinned host -> device staging of per-batch parameter blocks, reused across iterations.
class DeviceStaging {
 public:
  DeviceStaging() = default;
  DeviceStaging(const DeviceStaging &) = delete;
  DeviceStaging &operator=(const DeviceStaging &) = delete;
  ~DeviceStaging() {
    if (event_) cudaEventSynchronize(event_), cudaEventDestroy(event_);
    if (host_) cudaFreeHost(host_);
    if (dev_) cudaFree(dev_);
  }

  /// Waits until the previous batch's kernels no longer read the buffers, then returns a host
  /// buffer of at least `bytes`; the matching device pointer is `device()`.
  void *host(size_t bytes) {
    if (event_) FPLOAD_CUDA_CHECK(cudaEventSynchronize(event_));
    if (bytes > cap_) {
      if (host_) FPLOAD_CUDA_CHECK(cudaFreeHost(host_));
      if (dev_) FPLOAD_CUDA_CHECK(cudaFree(dev_));
      host_ = dev_ = nullptr;
      cap_ = bytes + bytes / 2 + 4096;
      FPLOAD_CUDA_CHECK(cudaMallocHost(&host_, cap_));
      FPLOAD_CUDA_CHECK(cudaMalloc(&dev_, cap_));
    }
    return host_;
  }
  void *device() const { return dev_; }

  void upload(size_t bytes, cudaStream_t stream) {
    FPLOAD_CUDA_CHECK(cudaMemcpyAsync(dev_, host_, bytes, cudaMemcpyHostToDevice, stream));
  }
  /// Call after the launches that read the buffers.
  void release(cudaStream_t stream) {
    if (!event_) FPLOAD_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    FPLOAD_CUDA_CHECK(cudaEventRecord(event_, stream));
  }

 private:
  void *host_ = nullptr, *dev_ = nullptr;
  size_t cap_ = 0;
  cudaEvent_t event_ = nullptr;
};

}  // namespace fpload

#endif  // FPLOAD_CUDA_CHECK_H_
