// FploadPhotometric: contrast, brightness, gamma, noise, blur, dry/wet, inversion; uint8 or
// normalised float/half output, fused in one pass.
#ifndef FPLOAD_PHOTOMETRIC_H_
#define FPLOAD_PHOTOMETRIC_H_

#include <memory>
#include <vector>

#include "fpload/photometric_math.h"
#include "op_common.h"

namespace fpload {

template <typename Backend>
class FploadPhotometric : public dali::Operator<Backend> {
 public:
  explicit FploadPhotometric(const dali::OpSpec &spec) : dali::Operator<Backend>(spec) {
    const char *op = "fpload_photometric";
    read_range(spec, op, "contrast", args_.contrast, 0.f);
    auto b = spec.GetRepeatedArgument<float>("brightness");
    DALI_ENFORCE(b.size() == 2 && b[0] <= b[1] && b[0] >= -1.f && b[1] <= 1.f,
                 dali::make_string(op, ": `brightness` must be a pair [lo, hi] within [-1, 1]"));
    args_.brightness[0] = b[0];
    args_.brightness[1] = b[1];
    read_range(spec, op, "gamma", args_.gamma, 0.f, true);
    read_range(spec, op, "noise_std", args_.noise_std, 0.f);
    args_.blur_prob = read_prob(spec, op, "blur_prob");
    read_range(spec, op, "blur_strength", args_.blur_strength, 0.f);
    DALI_ENFORCE(args_.blur_strength[1] <= 1.f,
                 dali::make_string(op, ": `blur_strength` must lie in [0, 1]"));
    args_.dry_prob = read_prob(spec, op, "dry_prob");
    args_.wet_prob = read_prob(spec, op, "wet_prob");
    DALI_ENFORCE(args_.dry_prob + args_.wet_prob <= 1.f,
                 dali::make_string(op, ": `dry_prob` + `wet_prob` must be <= 1, got ",
                                   args_.dry_prob + args_.wet_prob));
    args_.invert_prob = read_prob(spec, op, "invert_prob");
    args_.mean = spec.GetArgument<float>("mean");
    args_.std = spec.GetArgument<float>("std");
    DALI_ENFORCE(args_.std > 0.f, dali::make_string(op, ": `std` must be > 0, got ", args_.std));
    dtype_ = spec.GetArgument<dali::DALIDataType>("dtype");
    DALI_ENFORCE(dtype_ == DALI_UINT8 || dtype_ == DALI_FLOAT ||
                     dtype_ == DALI_FLOAT16,
                 dali::make_string(op, ": `dtype` must be UINT8, FLOAT or FLOAT16, got ", dtype_));
    inv_std_ = static_cast<float>(1.0 / static_cast<double>(args_.std));
  }

 protected:
  bool SetupImpl(std::vector<dali::OutputDesc> &out, const dali::Workspace &ws) override {
    check_gray_input(ws, "fpload_photometric");
    const auto &shape = ws.GetInputShape(0);
    int n = shape.num_samples();
    auto keys = sample_keys(this->spec_, ws, n);
    params_.resize(n);
    for (int i = 0; i < n; ++i) params_[i] = draw_photometric_params(keys[i], args_);
    out.resize(1);
    out[0].type = dtype_;
    out[0].shape = shape;
    return true;
  }

  void RunImpl(dali::Workspace &ws) override;

 private:
  PhotometricArgs args_;
  dali::DALIDataType dtype_;
  float inv_std_;
  std::vector<PhotometricParams> params_;
  std::shared_ptr<void> gpu_;
};

}  // namespace fpload

#endif  // FPLOAD_PHOTOMETRIC_H_
