// CPU backend and schema of FploadPhotometric.
#include "photometric.h"

#include "dali/core/float16.h"

namespace fpload {

template <>
void FploadPhotometric<dali::CPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::CPUBackend>(0);
  auto &out = ws.Output<dali::CPUBackend>(0);
  out.SetLayout("HWC");
  auto &pool = ws.GetThreadPool();
  const float mean = args_.mean, inv_std = inv_std_;
  const BatchRows br(in.shape());
  const auto &rows = br.rows;
  const auto &row_cost = br.width;
  run_row_blocks(pool, plan_row_blocks(rows, br.cost, pool.NumThreads()), row_cost,
                 [&](const RowBlock &b) {
    const int i = b.sample, h = rows[i], w = static_cast<int>(row_cost[i]);
    const PhotometricParams &p = params_[i];
    const uint8_t *src = in.tensor<uint8_t>(i);
    if (dtype_ == DALI_UINT8) {
      photometric_rows_cpu(p, src, out.mutable_tensor<uint8_t>(i), h, w, b.y0, b.y1,
                           [](uint8_t *o, float t) { *o = to_u8(t); });
    } else if (dtype_ == DALI_FLOAT) {
      photometric_rows_cpu(p, src, out.mutable_tensor<float>(i), h, w, b.y0, b.y1,
                           [=](float *o, float t) { *o = (t - mean) * inv_std; });
    } else {
      static_assert(sizeof(dali::float16) == sizeof(uint16_t));
      photometric_rows_cpu(  // IEEE half bits, rounded to nearest even like dali::float16(float)
          p, src, reinterpret_cast<uint16_t *>(out.mutable_tensor<dali::float16>(i)), h, w, b.y0,
          b.y1, [=](uint16_t *o, float t) { *o = f32_to_f16_bits((t - mean) * inv_std); });
    }
  });
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadPhotometric, ::fpload::FploadPhotometric<::dali::CPUBackend>,
                       ::dali::CPU);

DALI_SCHEMA(FploadPhotometric)
    .DocStr(R"(Fingerprint photometric augmentation fused in one pass: dry/wet ridges (3x3 max /
min), blur (3x3 binomial, blended by strength), contrast, brightness and gamma (a per-sample tone
table), Gaussian-like noise, inversion; uint8 output or float/half normalised as
(value - mean) / std in grey levels. Random parameters per sample from Philox4x32-10 keyed by
(aug_seed, epoch, sample_idx). Input: uint8 HWC, C = 1.)")
    .NumInput(1)
    .NumOutput(1)
    .FPLOAD_COMMON_SCHEMA_ARGS
    .AddOptionalArg("contrast", "Contrast factor range [lo, hi] around mid-grey.",
                    std::vector<float>{1.f, 1.f})
    .AddOptionalArg("brightness", "Brightness shift range, fraction of full scale.",
                    std::vector<float>{0.f, 0.f})
    .AddOptionalArg("gamma", "Gamma range (> 0).", std::vector<float>{1.f, 1.f})
    .AddOptionalArg("noise_std", "Noise standard deviation range, grey levels.",
                    std::vector<float>{0.f, 0.f})
    .AddOptionalArg("blur_prob", "Probability of blur.", 0.f)
    .AddOptionalArg("blur_strength", "Blur blend range within [0, 1].",
                    std::vector<float>{1.f, 1.f})
    .AddOptionalArg("dry_prob", "Probability of a dry print (thinner ridges).", 0.f)
    .AddOptionalArg("wet_prob", "Probability of a wet print (thicker ridges).", 0.f)
    .AddOptionalArg("invert_prob", "Probability of inverting the grey levels.", 0.f)
    .AddOptionalTypeArg("dtype", "Output type: UINT8, FLOAT or FLOAT16.", DALI_UINT8)
    .AddOptionalArg("mean", "Mean subtracted from float outputs, grey levels.", 0.f)
    .AddOptionalArg("std", "Divisor of float outputs, grey levels.", 1.f);
