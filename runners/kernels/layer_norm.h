#pragma once
// LayerNorm(x + residual) over the last dimension, as BERT's post-LN layers
// apply it after each sublayer: y = (v - mean) / sqrt(var + eps) * weight +
// bias with v = x + residual, mean and biased variance over the row.
//
// Why a kernel of our own: libtorch 1.13's CPU LayerNorm in bfloat16 is
// slow. At bert-base, batch 32 x 128, 2 threads, on an AMX Xeon, the two
// adds and LayerNorms of one layer took 23.6 ms in bf16 against 4.3 ms in
// fp32, a third of the whole bf16 layer (69 ms), more than its four GEMMs.
// Here a bf16 row is widened to fp32 once, the statistics and the
// normalisation run in fp32 (as ATen's do), and the result is rounded to
// bf16 once (round to nearest even, as c10::BFloat16). Other dtypes and
// devices, and non-contiguous inputs, keep ATen (x.add_(residual) then
// at::layer_norm), so fp32 numbers are exactly what they were.
#include <ATen/core/Tensor.h>

#include "runners/kernels/linear.h"

namespace embeval {

// x and residual [..., h] of one dtype; weight, bias [h]. x is overwritten
// (it is a sublayer's fresh output; residual may be x). Returns [..., h] in
// x's dtype: x itself on the bf16 kernel's path, a new tensor on ATen's.
at::Tensor add_layer_norm(at::Tensor x, const at::Tensor& residual, const at::Tensor& weight, const at::Tensor& bias,
                          double eps);

// add_layer_norm(linear(in), residual, ...) a block of rows at a time on
// each thread (Linear::map_row_blocks): each block's product is normalised
// while it is in that thread's cache instead of going to memory and back
// (BERT's attention output). bf16 in and residual [..., h] contiguous, of
// one shape; undefined where the kernel declines (the caller makes the two
// calls). The same bits as the two calls. bert-base forward, batch 32, 2
// threads, alternating runs: bf16 441 / 475 / 442 ms against 482 / 523 /
// 447 without, bf16+W8A8 326 / 329 / 320 against 357 / 319 / 318: no clear
// gain. EMBEVAL_NO_LAYER_BLOCKS=1 turns it off (and blocked_qkv_attention).
at::Tensor blocked_linear_add_layer_norm(const Linear& linear, const at::Tensor& in, const at::Tensor& residual,
                                         const at::Tensor& weight, const at::Tensor& bias, double eps);

}  // namespace embeval
