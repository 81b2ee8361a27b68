// CPU backend and schema of FploadInflate.
#include "inflate.h"

namespace fpload {

template <>
bool FploadInflate<dali::CPUBackend>::SetupImpl(std::vector<dali::OutputDesc> &out,
                                                const dali::Workspace &ws) {
  const char *op = "fpload_inflate";
  const auto &data = ws.Input<dali::CPUBackend>(0);
  const auto &shapes = ws.Input<dali::CPUBackend>(1);
  const int n = data.num_samples();
  DALI_ENFORCE(n > 0, dali::make_string(op, ": empty batch; expected at least one sample"));
  DALI_ENFORCE(data.type() == DALI_UINT8,
               dali::make_string(op, ": compressed data must be uint8, got ", data.type()));
  DALI_ENFORCE(shapes.type() == DALI_INT32,
               dali::make_string(op, ": shape must be int32 [H, W, C], got ", shapes.type()));
  dali::TensorListShape<3> shape(n);
  for (int i = 0; i < n; ++i) {
    DALI_ENFORCE(shapes.shape().tensor_size(i) == 3,
                 dali::make_string(op, ": sample ", i, " (", data.GetMeta(i).GetSourceInfo(),
                                   "): shape must hold 3 values [H, W, C], got ",
                                   shapes.shape().tensor_size(i)));
    const int32_t *s = shapes.tensor<int32_t>(i);
    DALI_ENFORCE(s[0] > 0 && s[1] > 0 && s[2] > 0,
                 dali::make_string(op, ": sample ", i, " (", data.GetMeta(i).GetSourceInfo(),
                                   "): bad shape [", s[0], ", ", s[1], ", ", s[2], "]"));
    shape.set_tensor_shape(i, dali::TensorShape<3>(s[0], s[1], s[2]));
  }
  out.resize(1);
  out[0].type = DALI_UINT8;
  out[0].shape = shape;
  return true;
}

template <>
void FploadInflate<dali::CPUBackend>::RunImpl(dali::Workspace &ws) {
  const auto &data = ws.Input<dali::CPUBackend>(0);
  auto &out = ws.Output<dali::CPUBackend>(0);
  out.SetLayout("HWC");
  auto &pool = ws.GetThreadPool();
  const int n = data.num_samples();
  std::vector<Lz4Status> status(n, Lz4Status::kOk);
  for (int i = 0; i < n; ++i) {
    const int64_t size = out.shape().tensor_size(i);
    pool.AddWork([&, i, size](int) {
      status[i] = lz4_block_decode(data.tensor<uint8_t>(i),
                                   static_cast<size_t>(data.shape().tensor_size(i)),
                                   out.mutable_tensor<uint8_t>(i), static_cast<size_t>(size));
    }, size);
  }
  pool.RunAll();
  for (int i = 0; i < n; ++i) {
    DALI_ENFORCE(status[i] == Lz4Status::kOk,
                 dali::make_string("fpload_inflate: sample ", i, " (",
                                   data.GetMeta(i).GetSourceInfo(), "): ",
                                   lz4_status_text(status[i])));
  }
}

}  // namespace fpload

DALI_REGISTER_OPERATOR(FploadInflate, ::fpload::FploadInflate<::dali::CPUBackend>, ::dali::CPU);

DALI_SCHEMA(FploadInflate)
    .DocStr(R"(Decodes LZ4 blocks (raw block format, no frame) into uint8 images of the shape given
by the second input (int32 [H, W, C]), on the CPU: the CPU twin of
`decoders.inflate(algorithm="LZ4")`, used for fpload's raw-lz4 shards. A corrupt or truncated block
fails naming the sample's source.)")
    .NumInput(2)
    .NumOutput(1);
