// FploadWarp: rotation, scale, translation and skin distortion fused in one pass.
#ifndef FPLOAD_WARP_H_
#define FPLOAD_WARP_H_

#include <memory>
#include <string>
#include <vector>

#include "fpload/warp_math.h"
#include "op_common.h"

namespace fpload {

template <typename Backend>
class FploadWarp : public dali::Operator<Backend> {
 public:
  explicit FploadWarp(const dali::OpSpec &spec) : dali::Operator<Backend>(spec) {
    const char *op = "fpload_warp";
    auto ang = spec.GetRepeatedArgument<float>("angle");
    DALI_ENFORCE(ang.size() == 2 && ang[0] <= ang[1],
                 dali::make_string(op, ": `angle` must be a pair [lo, hi] with lo <= hi"));
    args_.angle[0] = ang[0];
    args_.angle[1] = ang[1];
    read_range(spec, op, "scale", args_.scale, 0.f, true);
    auto tr = spec.GetRepeatedArgument<float>("translate");
    DALI_ENFORCE(tr.size() == 2 && tr[0] >= 0.f && tr[1] >= 0.f,
                 dali::make_string(op, ": `translate` must be a pair of non-negative pixel "
                                       "magnitudes [x, y]"));
    args_.translate[0] = tr[0];
    args_.translate[1] = tr[1];
    args_.distortion = spec.GetArgument<float>("distortion");
    DALI_ENFORCE(args_.distortion >= 0.f,
                 dali::make_string(op, ": `distortion` must be >= 0 pixels, got ",
                                   args_.distortion));
    args_.grid = spec.GetArgument<int>("grid");
    DALI_ENFORCE(args_.grid >= 2 && args_.grid <= kMaxWarpGrid,
                 dali::make_string(op, ": `grid` must be in [2, ", kMaxWarpGrid, "], got ",
                                   args_.grid));
    auto interp = spec.GetArgument<std::string>("interp");
    DALI_ENFORCE(interp == "linear" || interp == "nearest",
                 dali::make_string(op, ": `interp` must be 'linear' or 'nearest', got '", interp,
                                   "'"));
    args_.nearest = interp == "nearest";
    args_.fill = spec.GetArgument<float>("fill");
    DALI_ENFORCE(args_.fill >= 0.f && args_.fill <= 255.f,
                 dali::make_string(op, ": `fill` must be in [0, 255], got ", args_.fill));
    auto mode = spec.GetArgument<std::string>("center_mode");
    DALI_ENFORCE(mode == "image" || mode == "foreground",
                 dali::make_string(op, ": `center_mode` must be 'image' or 'foreground', got '",
                                   mode, "'"));
    args_.center_mode = spec.ArgumentDefined("center") ? kCenterGiven
                        : mode == "foreground"        ? kCenterForeground
                                                      : kCenterImage;
    args_.fg_threshold = spec.GetArgument<int>("fg_threshold");
    if (spec.HasArgument("size")) {
      auto sz = spec.GetRepeatedArgument<int>("size");
      DALI_ENFORCE(sz.size() == 2 && sz[0] > 0 && sz[1] > 0,
                   dali::make_string(op, ": `size` must be a pair of positive [height, width]"));
      size_[0] = sz[0];
      size_[1] = sz[1];
    }
  }

 protected:
  bool SetupImpl(std::vector<dali::OutputDesc> &out, const dali::Workspace &ws) override {
    check_gray_input(ws, "fpload_warp");
    const auto &in_shape = ws.GetInputShape(0);
    int n = in_shape.num_samples();
    auto keys = sample_keys(this->spec_, ws, n);
    std::vector<float> centers;
    if (args_.center_mode == kCenterGiven) read_centers(ws, n, centers);
    params_.resize(n);
    dali::TensorListShape<3> out_shape(n);
    for (int i = 0; i < n; ++i) {
      auto s = in_shape.tensor_shape_span(i);
      int h = static_cast<int>(s[0]), w = static_cast<int>(s[1]);
      params_[i] = draw_warp_params(keys[i], args_);
      if (args_.center_mode == kCenterGiven) {
        params_[i].cx = centers[2 * i];
        params_[i].cy = centers[2 * i + 1];
      } else {  // image centre; the foreground centre is computed in RunImpl
        params_[i].cx = static_cast<float>(w) * 0.5f;
        params_[i].cy = static_cast<float>(h) * 0.5f;
      }
      out_shape.set_tensor_shape(i, {size_[0] > 0 ? size_[0] : h, size_[1] > 0 ? size_[1] : w, 1});
    }
    out.resize(1);
    out[0].type = DALI_UINT8;
    out[0].shape = out_shape;
    return true;
  }

  void RunImpl(dali::Workspace &ws) override;

 private:
  void read_centers(const dali::Workspace &ws, int n, std::vector<float> &centers) {
    centers.resize(2 * n);
    if (this->spec_.HasTensorArgument("center")) {
      const auto &arg = ws.ArgumentInput("center");
      DALI_ENFORCE(arg.num_samples() == n && arg.type() == DALI_FLOAT,
                   "fpload_warp: `center` must be a float32 pair (x, y) per sample");
      for (int i = 0; i < n; ++i) {
        DALI_ENFORCE(arg.shape().tensor_size(i) == 2,
                     dali::make_string("fpload_warp: `center` of sample ", i,
                                       " must hold 2 values (x, y)"));
        centers[2 * i] = arg.template tensor<float>(i)[0];
        centers[2 * i + 1] = arg.template tensor<float>(i)[1];
      }
    } else {
      auto c = this->spec_.template GetRepeatedArgument<float>("center");
      DALI_ENFORCE(c.size() == 2, "fpload_warp: `center` must be a pair (x, y) in pixels");
      for (int i = 0; i < n; ++i) {
        centers[2 * i] = c[0];
        centers[2 * i + 1] = c[1];
      }
    }
  }

  WarpArgs args_;
  int size_[2] = {0, 0};
  std::vector<WarpParams> params_;
  std::vector<WarpXTaps> xtaps_;  // CPU: per-sample distortion x taps, kept between batches
  std::shared_ptr<void> gpu_;  // DeviceStaging, created by the GPU backend
};

}  // namespace fpload

#endif  // FPLOAD_WARP_H_
