#pragma once
// GPTQ (Frantar et al., arXiv 2210.17323), as IST-DASLab/gptq's
// GPTQ.fasterquant does it, with AutoGPTQ's g_idx for act-order:
//
//  - H = sum over calibration tokens of x x^T (the reference's 2/N scale
//    does not change the result); input columns never seen (H_jj = 0) are
//    dead: H_jj = 1, W[:, j] = 0.
//  - act-order: columns in order of decreasing H_jj (a stable sort, ties in
//    column order), groups are runs of that order.
//  - H += 0.01 * mean(diag H) * I; U = the upper Cholesky factor of H^-1.
//  - Blocks of 128 columns: each column is quantized with its group's
//    parameters (found on the current W when the group starts, the range
//    always including 0: scale = (max - min) / maxq, zero = round(-min /
//    scale)), its error divided by U_ii is spread over the block's remaining
//    columns through row i of U, and the block's errors over all later
//    columns at once (the lazy batch update).
//
// Asymmetric; scales rounded to fp16 when found (QuantizedWeight's rule).
// The arithmetic runs in float64.
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "runners/quant/quantized_weight.h"

namespace embeval {

struct GptqOptions {
  int bits = 4;
  int64_t group_size = 0;  // 0: one group per row
  bool act_order = false;
  double damp = 0.01;
  int64_t block_size = 128;
};

// weight [out, in]; hessian [in, in] (symmetric, from calibration inputs).
// `tensor` names the weight in errors.
QuantizedWeight gptq_quantize(const at::Tensor& weight, const at::Tensor& hessian, const GptqOptions& options,
                              const std::string& tensor);

}  // namespace embeval
