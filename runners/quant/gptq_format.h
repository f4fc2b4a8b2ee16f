#pragma once
// AutoGPTQ's tensors for one quantized Linear (what AutoGPTQ and GPTQModel
// save and load; see runners/quant/FORMATS.md):
//
//   qweight  int32 [in * bits / 32, out]  codes packed along the input axis
//   qzeros   int32 [groups, out * bits / 32]  zeros packed along the output axis
//   scales   fp16  [groups, out]
//   g_idx    int32 [in]  the group of each input column (act-order reorders it)
//
// Packing is a little-endian bit stream along the packed axis: value j sits
// at bits [j*bits, j*bits + bits) of the 32-bit words read in order (for 2, 4
// and 8 bits that is word j / (32/bits), shift (j % (32/bits)) * bits; for 3
// bits, 32 values fill 3 words). The "gptq" (v1) format stores each zero
// minus one, "gptq_v2" (GPTQModel) the zero itself; AutoGPTQ's kernels read a
// v1 field f as the zero f + 1.
#include <string>

#include <ATen/core/Tensor.h>

#include "runners/quant/quantized_weight.h"

namespace embeval {

enum class GptqFormat { v1, v2 };

struct GptqTensors {
  at::Tensor qweight, qzeros, scales, g_idx;
};

// v1 cannot store a zero of 0 (its field would be -1): UserError naming
// `tensor`; write v2 instead. bits 2, 3, 4 or 8; in and out must fill whole
// words.
GptqTensors pack_gptq(const QuantizedWeight& q, GptqFormat format, const std::string& tensor);

// Checks every shape and dtype against bits and group size (UserError naming
// `tensor`, the Linear's name, and the field) and unpacks. group_size <= 0
// means one group (AutoGPTQ's -1). scales may be fp16, bf16 or fp32.
QuantizedWeight unpack_gptq(const GptqTensors& t, int bits, int64_t group_size, bool symmetric, GptqFormat format,
                            const std::string& tensor);

// The bit-stream packing both formats build on, exposed for tests: values
// [rows, cols] (each < 2^bits) packed along dim 0 or 1 into int32 words.
at::Tensor pack_bits(const at::Tensor& values, int bits, int dim);
at::Tensor unpack_bits(const at::Tensor& words, int bits, int dim, int64_t count);

}  // namespace embeval
