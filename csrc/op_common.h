// Argument parsing shared by the fpload DALI operators (host only).
#ifndef FPLOAD_OP_COMMON_H_
#define FPLOAD_OP_COMMON_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dali/pipeline/operator/common.h"
#include "dali/pipeline/operator/operator.h"
#include "fpload/philox.h"

namespace fpload {

/// Input checks common to every operator: uint8 HWC with one channel, non-empty batch.
inline void check_gray_input(const dali::Workspace &ws, const char *op) {
  int n = ws.GetInputBatchSize(0);
  DALI_ENFORCE(n > 0, dali::make_string(op, ": empty batch; expected at least one sample"));
  DALI_ENFORCE(ws.GetInputDataType(0) == DALI_UINT8,
               dali::make_string(op, ": input must be uint8, got ", ws.GetInputDataType(0)));
  const auto &shape = ws.GetInputShape(0);
  DALI_ENFORCE(shape.sample_dim() == 3,
               dali::make_string(op, ": input must be HWC with C = 1, got ", shape.sample_dim(),
                                 " dimensions"));
  auto layout = ws.GetInputLayout(0);
  DALI_ENFORCE(layout.empty() || layout == "HWC",
               dali::make_string(op, ": input layout must be HWC, got '", layout, "'"));
  for (int i = 0; i < n; ++i) {
    auto s = shape.tensor_shape_span(i);
    DALI_ENFORCE(s[2] == 1, dali::make_string(op, ": sample ", i,
                                              " has ", s[2], " channels; expected grayscale (C = 1)"));
  }
}

/// The random-stream keys of the batch from `aug_seed`, `sample_idx` and `epoch`.
inline std::vector<SampleKey> sample_keys(const dali::OpSpec &spec, const dali::Workspace &ws,
                                          int n) {
  std::vector<int64_t> idx, epoch;
  dali::GetPerSampleArgument<int64_t>(idx, "sample_idx", spec, ws, n);
  dali::GetPerSampleArgument<int64_t>(epoch, "epoch", spec, ws, n);
  uint64_t seed = static_cast<uint64_t>(spec.GetArgument<int64_t>("aug_seed"));
  std::vector<SampleKey> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = SampleKey{seed, idx[i], epoch[i]};
  return keys;
}

/// A [lo, hi] float pair argument; `min` bounds lo, `what` describes the meaning.
inline void read_range(const dali::OpSpec &spec, const char *op, const char *name, float *out,
                       float min, bool strict = false) {
  auto v = spec.GetRepeatedArgument<float>(name);
  DALI_ENFORCE(v.size() == 2, dali::make_string(op, ": `", name, "` must be a pair [lo, hi], got ",
                                                v.size(), " values"));
  DALI_ENFORCE(v[0] <= v[1], dali::make_string(op, ": `", name, "` must have lo <= hi, got [",
                                               v[0], ", ", v[1], "]"));
  DALI_ENFORCE(strict ? v[0] > min : v[0] >= min,
               dali::make_string(op, ": `", name, "` must be ", strict ? "> " : ">= ", min,
                                 ", got [", v[0], ", ", v[1], "]"));
  out[0] = v[0];
  out[1] = v[1];
}

inline float read_prob(const dali::OpSpec &spec, const char *op, const char *name) {
  float p = spec.GetArgument<float>(name);
  DALI_ENFORCE(p >= 0.f && p <= 1.f,
               dali::make_string(op, ": `", name, "` must be a probability in [0, 1], got ", p));
  return p;
}

/// Rows, row widths (pixels) and pixel counts of the samples of a batch of HWC images.
struct BatchRows {
  std::vector<int> rows;
  std::vector<int64_t> width, cost;

  template <typename Shape>
  explicit BatchRows(const Shape &shape) {
    const int n = shape.num_samples();
    rows.resize(n);
    width.resize(n);
    cost.resize(n);
    for (int i = 0; i < n; ++i) {
      auto s = shape.tensor_shape_span(i);
      rows[i] = static_cast<int>(s[0]);
      width[i] = s[1];
      cost[i] = s[0] * s[1];
    }
  }
};

/// One CPU task: rows [y0, y1) of sample `sample`.
struct RowBlock {
  int sample, y0, y1;
};

/// Splits a batch into CPU tasks: one per sample, or -- when the batch is too small to keep
/// every thread busy -- row blocks of about total / (4 x threads) pixels (at least 16 K).
/// `rows[i]` and `cost[i]` (pixels) describe sample i.
inline std::vector<RowBlock> plan_row_blocks(const std::vector<int> &rows,
                                             const std::vector<int64_t> &cost, int threads) {
  int64_t total = 0;
  for (int64_t c : cost) total += c;
  const int64_t target = std::max<int64_t>(total / (4 * std::max(threads, 1)), 16384);
  std::vector<RowBlock> blocks;
  blocks.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    int nb = static_cast<int>(std::clamp<int64_t>(cost[i] / target, 1, std::max(rows[i], 1)));
    for (int b = 0; b < nb; ++b)
      blocks.push_back({static_cast<int>(i), static_cast<int>(int64_t{rows[i]} * b / nb),
                        static_cast<int>(int64_t{rows[i]} * (b + 1) / nb)});
  }
  return blocks;
}

/// Runs fn(block) for every block on the pool, largest first, and waits.
template <typename Fn>
void run_row_blocks(dali::ThreadPool &pool, const std::vector<RowBlock> &blocks,
                    const std::vector<int64_t> &row_cost, Fn &&fn) {
  for (const RowBlock &b : blocks)
    pool.AddWork([&fn, b](int) { fn(b); }, int64_t{b.y1 - b.y0} * row_cost[b.sample]);
  pool.RunAll();
}

}  // namespace fpload

/// Arguments every fpload operator takes.
#define FPLOAD_COMMON_SCHEMA_ARGS                                                             \
  AddArg("sample_idx", "Global index of each sample in the dataset version (int64 per sample).", \
         DALI_INT64, true)                                                              \
      .AddOptionalArg<int64_t>("epoch", "Epoch number (int64 per sample or scalar).", 0, true)  \
      .AddOptionalArg<int64_t>("aug_seed", "Seed of the augmentation random streams.", 0)       \
      .InputLayout(0, "HWC")

#endif  // FPLOAD_OP_COMMON_H_
