// CPU backend and schema of FploadWarp.
#include "warp.h"

namespace fpload {

template <>
void FploadWarp<dali::CPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::CPUBackend>(0);
  auto &out = ws.Output<dali::CPUBackend>(0);
  out.SetLayout("HWC");
  auto &pool = ws.GetThreadPool();
  const int n = in.num_samples();
  const BatchRows br(out.shape());
  const auto &rows = br.rows;
  const auto &row_cost = br.width;
  xtaps_.resize(n);
  // per sample, before its rows: the foreground centre and the distortion x taps
  auto prepare = [&](int i) {
    auto is = in.shape().tensor_shape_span(i);
    int h = static_cast<int>(is[0]), w = static_cast<int>(is[1]);
    WarpParams &p = params_[i];
    if (args_.center_mode == kCenterForeground)
      center_from_moments(foreground_moments_cpu(in.tensor<uint8_t>(i), h, w, args_.fg_threshold),
                          h, w, p.cx, p.cy);
    int ow = static_cast<int>(row_cost[i]);
    if (p.distort && (xtaps_[i].ow != ow || xtaps_[i].grid != p.grid)) xtaps_[i].init(ow, p.grid);
  };
  auto rows_of = [&](int i, int y0, int y1) {
    auto is = in.shape().tensor_shape_span(i);
    warp_rows_cpu(params_[i], in.tensor<uint8_t>(i), static_cast<int>(is[0]),
                  static_cast<int>(is[1]), out.mutable_tensor<uint8_t>(i), rows[i],
                  static_cast<int>(row_cost[i]), y0, y1, args_.nearest, args_.fill, &xtaps_[i]);
  };
  auto blocks = plan_row_blocks(rows, br.cost, pool.NumThreads());
  if (static_cast<int>(blocks.size()) == n) {  // one task per sample
    run_row_blocks(pool, blocks, row_cost, [&](const RowBlock &b) {
      prepare(b.sample);
      rows_of(b.sample, b.y0, b.y1);
    });
  } else {  // a small batch: row blocks, after a pass that prepares every sample
    for (int i = 0; i < n; ++i) pool.AddWork([&, i](int) { prepare(i); }, br.cost[i]);
    pool.RunAll();
    run_row_blocks(pool, blocks, row_cost,
                   [&](const RowBlock &b) { rows_of(b.sample, b.y0, b.y1); });
  }
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadWarp, ::fpload::FploadWarp<::dali::CPUBackend>, ::dali::CPU);

DALI_SCHEMA(FploadWarp)
    .DocStr(R"(Fingerprint warp: rotation, scale, translation and a smooth non-linear skin
distortion (a random grid of displacement vectors interpolated bicubically), fused in one pass.
Random parameters are drawn per sample from Philox4x32-10 keyed by (aug_seed, epoch, sample_idx),
so the CPU and GPU backends give the same output. Input: uint8 HWC, C = 1.)")
    .NumInput(1)
    .NumOutput(1)
    .FPLOAD_COMMON_SCHEMA_ARGS
    .AddOptionalArg("angle", "Rotation range [lo, hi] in degrees.", std::vector<float>{0.f, 0.f})
    .AddOptionalArg("scale", "Scale range [lo, hi] (> 0).", std::vector<float>{1.f, 1.f})
    .AddOptionalArg("translate", "Maximum |shift| [x, y] in pixels.", std::vector<float>{0.f, 0.f})
    .AddOptionalArg("distortion", "Maximum displacement of a distortion grid node, pixels.", 0.f)
    .AddOptionalArg("grid", "Distortion grid nodes per axis, 2..8.", 4)
    .AddOptionalArg("interp", "'linear' (bilinear) or 'nearest'.", "linear")
    .AddOptionalArg("fill", "Background grey level for pixels mapped outside the input.", 255.f)
    .AddOptionalArg<std::vector<int>>("size", "Output [height, width]; default: input size.",
                                      nullptr)
    .AddOptionalArg("center_mode",
                    "'image' (image centre) or 'foreground' (centroid of dark pixels) as the "
                    "point the output is centred on.",
                    "image")
    .AddOptionalArg<std::vector<float>>("center", "A given centre (x, y) in input pixels; "
                                        "overrides center_mode.", nullptr, true)
    .AddOptionalArg("fg_threshold", "Pixels darker than this weigh in the foreground centroid.",
                    200);
