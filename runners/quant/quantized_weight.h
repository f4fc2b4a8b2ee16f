#pragma once
// The integer form of one Linear weight W [out, in], in the one layout every
// method produces and every checkpoint format is read into:
//
//   W[o][i] ~= scales[o][g] * (codes[o][i] - zeros[o][g]),  g = g_idx[i]
//
// codes are unsigned (0 .. 2^bits - 1); a symmetric quantizer has every zero
// at 2^(bits-1) (codes - 128 is then the signed int8 value). This is the
// GPTQ formula (AutoGPTQ's dequantisation with zeros stored without the v1
// offset, i.e. gptq_v2 semantics) and AWQ's (zeros raw), transposed to
// the weight's own [out, in] orientation.
//
// Scales are float32 tensors whose values are fp16 numbers: AutoGPTQ and
// AutoAWQ store scales in fp16, so rounding them when they are found makes a
// saved checkpoint evaluate to exactly the weights the harness measured.
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace embeval {

struct QuantizedWeight {
  int bits = 8;
  int64_t group_size = 0;  // input columns per group; the whole row when 0 or >= in
  bool symmetric = false;  // every zero is 2^(bits-1)
  at::Tensor codes;        // uint8 [out, in]
  at::Tensor scales;       // float32 [out, groups], fp16-representable
  at::Tensor zeros;        // int32 [out, groups]
  at::Tensor g_idx;        // int32 [in]: group of each input column (act-order); undefined means i / group_size

  int64_t out_features() const { return codes.size(0); }
  int64_t in_features() const { return codes.size(1); }
  int64_t groups() const { return scales.size(1); }
  // Group of every input column, int64 [in] (g_idx, or i / group_size).
  at::Tensor column_groups() const;
  // W as float32 [out, in] (the fake-quant weight).
  at::Tensor dequantize() const;
  // Bytes of the packed form: bits/8 per weight plus fp16 scales and packed zeros.
  int64_t packed_bytes() const;
};

// One quantized Linear of a checkpoint, as a method made it and a
// checkpoint stores it: the layer's name (as in the checkpoint, without
// ".weight"), its integers, and what its kernel needs beside them.
struct QuantizedLinear {
  std::string name;
  QuantizedWeight weight;
  at::Tensor bias;                // float32 [out] as the layer now needs it (AWQ rescales V's), or undefined
  at::Tensor input_divisor;       // float32 [in]: the layer computes (x / d) W^T (AWQ, SmoothQuant); or undefined
  bool int8_activations = false;  // W8A8: activations quantized per token
  // Rows [begin, begin + count) as a Linear of their own (Q, K, V of a fused projection).
  QuantizedLinear rows(const std::string& row_name, int64_t begin, int64_t count) const;
};

// Groups of `group_size` input columns (0: the whole row). UserError naming
// `tensor` when group_size does not divide `in`.
int64_t group_count(int64_t in, int64_t group_size, const char* tensor_kind, const std::string& tensor);

// Round-to-nearest of one weight [out, in] (any float dtype; computed in
// float32, ties to even as torch.round). Asymmetric groups use their min and
// max (AWQ's pseudo_quantize_tensor: scale = max(max - min, 1e-5) / maxq,
// zero = clamp(-round(min / scale), 0, maxq)); symmetric ones their absolute
// max (SmoothQuant's per-channel absmax: scale = max(absmax, 1e-5) /
// (2^(bits-1) - 1), codes in +-(2^(bits-1) - 1) around the zero 2^(bits-1)).
// `tensor` names the weight in errors.
QuantizedWeight quantize_rtn(const at::Tensor& weight, int bits, int64_t group_size, bool symmetric,
                             const std::string& tensor);

// The fp16 value nearest to each element, as float32 (the scales' rounding).
at::Tensor round_to_fp16(const at::Tensor& x);

}  // namespace embeval
