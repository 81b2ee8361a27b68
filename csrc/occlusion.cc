// CPU backend and schema of FploadOcclusion.
#include "occlusion.h"

namespace fpload {

template <>
void FploadOcclusion<dali::CPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &in = ws.Input<dali::CPUBackend>(0);
  auto &out = ws.Output<dali::CPUBackend>(0);
  out.SetLayout("HWC");
  auto &pool = ws.GetThreadPool();
  const BatchRows br(in.shape());
  const auto &rows = br.rows;
  const auto &row_cost = br.width;
  run_row_blocks(pool, plan_row_blocks(rows, br.cost, pool.NumThreads()), row_cost,
                 [&](const RowBlock &b) {
    occlusion_rows_cpu(params_[b.sample], in.tensor<uint8_t>(b.sample),
                       out.mutable_tensor<uint8_t>(b.sample), rows[b.sample],
                       static_cast<int>(row_cost[b.sample]), b.y0, b.y1, args_.fill);
  });
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadOcclusion, ::fpload::FploadOcclusion<::dali::CPUBackend>, ::dali::CPU);

DALI_SCHEMA(FploadOcclusion)
    .DocStr(R"(Partial print / occlusion: keeps a random contact ellipse and sensor window and
erases random rectangles and elliptic blobs, filling the rest with background. Random masks are
drawn per sample from Philox4x32-10 keyed by (aug_seed, epoch, sample_idx). Input: uint8 HWC,
C = 1.)")
    .NumInput(1)
    .NumOutput(1)
    .FPLOAD_COMMON_SCHEMA_ARGS
    .AddOptionalArg("fill", "Background grey level.", 255)
    .AddOptionalArg("contact_prob", "Probability of a contact ellipse.", 0.f)
    .AddOptionalArg("contact_axes", "Semi-axes range as a fraction of half the width / height.",
                    std::vector<float>{0.6f, 1.0f})
    .AddOptionalArg("contact_jitter", "Contact centre offset, fraction of width / height.", 0.f)
    .AddOptionalArg("window_prob", "Probability of a sensor window crop.", 0.f)
    .AddOptionalArg("window_size", "Window side range, fraction of width / height.",
                    std::vector<float>{0.6f, 0.9f})
    .AddOptionalArg("erase_max", "Maximum number of erased rectangles (0..4).", 0)
    .AddOptionalArg("erase_area", "Area range of an erased rectangle, fraction of the image.",
                    std::vector<float>{0.02f, 0.08f})
    .AddOptionalArg("blob_max", "Maximum number of elliptic blobs (0..4).", 0)
    .AddOptionalArg("blob_radius", "Blob radius range, fraction of min(height, width).",
                    std::vector<float>{0.03f, 0.08f});
