// FploadOcclusion: partial prints -- contact ellipse, sensor window, erased rectangles, blobs.
#ifndef FPLOAD_OCCLUSION_H_
#define FPLOAD_OCCLUSION_H_

#include <memory>
#include <vector>

#include "fpload/occlusion_math.h"
#include "op_common.h"

namespace fpload {

template <typename Backend>
class FploadOcclusion : public dali::Operator<Backend> {
 public:
  explicit FploadOcclusion(const dali::OpSpec &spec) : dali::Operator<Backend>(spec) {
    const char *op = "fpload_occlusion";
    int fill = spec.GetArgument<int>("fill");
    DALI_ENFORCE(fill >= 0 && fill <= 255,
                 dali::make_string(op, ": `fill` must be in [0, 255], got ", fill));
    args_.fill = static_cast<uint8_t>(fill);
    args_.contact_prob = read_prob(spec, op, "contact_prob");
    read_range(spec, op, "contact_axes", args_.contact_axes, 0.f, true);
    args_.contact_jitter = spec.GetArgument<float>("contact_jitter");
    DALI_ENFORCE(args_.contact_jitter >= 0.f,
                 dali::make_string(op, ": `contact_jitter` must be >= 0, got ",
                                   args_.contact_jitter));
    args_.window_prob = read_prob(spec, op, "window_prob");
    read_range(spec, op, "window_size", args_.window_size, 0.f, true);
    args_.erase_max = spec.GetArgument<int>("erase_max");
    DALI_ENFORCE(args_.erase_max >= 0 && args_.erase_max <= kMaxErase,
                 dali::make_string(op, ": `erase_max` must be in [0, ", kMaxErase, "], got ",
                                   args_.erase_max));
    read_range(spec, op, "erase_area", args_.erase_area, 0.f);
    args_.blob_max = spec.GetArgument<int>("blob_max");
    DALI_ENFORCE(args_.blob_max >= 0 && args_.blob_max <= kMaxBlobs,
                 dali::make_string(op, ": `blob_max` must be in [0, ", kMaxBlobs, "], got ",
                                   args_.blob_max));
    read_range(spec, op, "blob_radius", args_.blob_radius, 0.f);
  }

 protected:
  bool SetupImpl(std::vector<dali::OutputDesc> &out, const dali::Workspace &ws) override {
    check_gray_input(ws, "fpload_occlusion");
    const auto &shape = ws.GetInputShape(0);
    int n = shape.num_samples();
    auto keys = sample_keys(this->spec_, ws, n);
    params_.resize(n);
    for (int i = 0; i < n; ++i) {
      auto s = shape.tensor_shape_span(i);
      params_[i] = draw_occlusion_params(keys[i], args_, static_cast<int>(s[0]),
                                         static_cast<int>(s[1]));
    }
    out.resize(1);
    out[0].type = DALI_UINT8;
    out[0].shape = shape;
    return true;
  }

  void RunImpl(dali::Workspace &ws) override;

 private:
  OcclusionArgs args_;
  std::vector<OcclusionParams> params_;
  std::shared_ptr<void> gpu_;
};

}  // namespace fpload

#endif  // FPLOAD_OCCLUSION_H_
