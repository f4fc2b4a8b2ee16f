#pragma once
// One BERT encoder layer a block of rows at a time, each thread its own
// blocks through the whole layer: the Q/K/V projection, attention over the
// block's texts, the attention output and its add + LayerNorm, the FFN pair
// and its add + LayerNorm, with the block's activations in buffers of the
// thread's own (at bert-base, 256 rows: 1.5 MB for the projection or the
// FFN middle, 384 KB for each of the others), so they stay in the thread's
// L2 between the steps instead of crossing to L3 and back at every step,
// and one parallel region a layer instead of five. The same kernels on the
// same rows as the step-by-step form (BertModel::layer_forward), so the
// same bits (tested).
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "runners/kernels/linear.h"

namespace embeval {

struct LayerBlockParts {
  const Linear& qkv;  // [3h, h], Q K V fused
  const Linear& attn_out;
  const Linear& ffn_in;  // with the activation
  const Linear& ffn_out;
  const at::Tensor& attn_ln_w;
  const at::Tensor& attn_ln_b;
  const at::Tensor& ffn_ln_w;
  const at::Tensor& ffn_ln_b;
  double eps;
  int64_t heads;
  int64_t ffn;  // the FFN middle's width
};

// The layer's output for x [b, t, h] bf16 on the CPU with the additive mask
// [b, 1, 1, t]; undefined (nothing computed) where this form does not run:
// a Linear without Linear::run_rows, no bf16 attention kernel (cpu_attention.h), fewer than two
// blocks a thread, or EMBEVAL_NO_LAYER_BLOCKS=1. A block is whole texts,
// as many as fit in 256 rows (one where a text is longer).
at::Tensor blocked_bert_layer(const LayerBlockParts& parts, const at::Tensor& x, const at::Tensor& additive_mask);

}  // namespace embeval
