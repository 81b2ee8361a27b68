// FploadInflate: LZ4 blocks → uint8 HWC images on the CPU (the GPU path is DALI's decoders.inflate).
#ifndef FPLOAD_INFLATE_H_
#define FPLOAD_INFLATE_H_

#include <vector>

#include "fpload/lz4_block.h"
#include "op_common.h"

namespace fpload {

template <typename Backend>
class FploadInflate : public dali::Operator<Backend> {
 public:
  explicit FploadInflate(const dali::OpSpec &spec) : dali::Operator<Backend>(spec) {}

 protected:
  bool SetupImpl(std::vector<dali::OutputDesc> &out, const dali::Workspace &ws) override;
  void RunImpl(dali::Workspace &ws) override;
};

}  // namespace fpload

#endif  // FPLOAD_INFLATE_H_
