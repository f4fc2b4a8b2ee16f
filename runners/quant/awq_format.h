#pragma once
// AutoAWQ's GEMM tensors for one quantized Linear (WQLinear_GEMM; see
// runners/quant/FORMATS.md):
//
//   qweight  int32 [in, out / 8]       4-bit codes packed along the output axis
//   qzeros   int32 [in / group, out / 8]  zeros, packed the same way, stored as is
//   scales   fp16  [in / group, out]
//
// Nibble k (bits 4k .. 4k+3) of word c holds output column 8c + ORDER[k],
// ORDER = {0, 2, 4, 6, 1, 3, 5, 7}. There is no g_idx: row i is in group
// i / group.
#include <string>

#include <ATen/core/Tensor.h>

#include "runners/quant/quantized_weight.h"

namespace embeval {

struct AwqTensors {
  at::Tensor qweight, qzeros, scales;
};

// 4-bit, groups of whole input rows (no act-order g_idx), out a multiple of
// 8; UserError naming `tensor` otherwise.
AwqTensors pack_awq(const QuantizedWeight& q, const std::string& tensor);

// Checks shapes and dtypes against the group size (UserError naming `tensor`
// and the field) and unpacks. group_size <= 0 means one group.
QuantizedWeight unpack_awq(const AwqTensors& t, int64_t group_size, const std::string& tensor);

}  // namespace embeval
