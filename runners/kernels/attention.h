#pragma once
// Scaled dot-product self-attention over BERT's fused QKV projection:
// softmax(Q K^T / sqrt(d) + mask) V, per head, with the heads merged back.
//
// CPU, fp32 / bf16, with oneDNN. With at least two batch rows a thread (and
// a row's scores within 4 MB), each thread takes whole batch rows through
// every step: Q, K and V copied out per head, both products as oneDNN
// matmuls on the dense copies (AMX for bf16), and the scale, mask, softmax
// (and bf16 rounding) in one pass of its own, all in that thread's cache
// with no barrier between steps (bert-base batch 32: fp32 16.5 -> 10.8 ms
// a layer, bf16 10.9 -> 6.3; attention.cpp). Otherwise both products read
// Q, K and V in place from the [b, t, 3, heads, d] projection (strided, no
// permute copies), add the scale and mask inside the first GEMM and write
// the context straight into [b, t, heads * d], in tiles of batch rows or of
// query rows so the scores stay in cache (and memory grows with t, not
// t^2), or, for bf16 on a CPU with AMX, the dense per-head form a tile at a
// time across the threads (oneDNN 2.6 runs the strided products only with
// gemm:jit). The scores stay fp32 for the softmax (bf16 models round the
// probabilities to bf16 for the second product, as PyTorch does).
// For bf16 on a CPU with AMX where the row-wise form does not apply (one
// batch row, long texts), the AMX kernel of cpu_attention.h (bert-base
// forward, seq 512: ~1.4x faster; attention.cpp has the numbers); on a CPU
// with AVX512-BF16 and no AMX (where the row-wise form needs AMX for
// bf16), that kernel's VDPBF16PS form everywhere (Zen 4, bert-base layer,
// batch 32: 6.1 ms against the strided form's 12.0).
// Elsewhere (CUDA, fp16, no oneDNN) it is aten_qkv_attention below.
#include <ATen/core/Tensor.h>

#include "runners/kernels/linear.h"

namespace embeval {

// qkv: [b, t, 3 * heads * head_dim] contiguous (query, key, value blocks);
// additive_mask: [b, 1, 1, t] in qkv's dtype (0 on tokens, a large negative
// value on padding). Returns the context [b, t, heads * head_dim].
at::Tensor fused_qkv_attention(const at::Tensor& qkv, const at::Tensor& additive_mask, int64_t heads);

// fused_qkv_attention(qkv(x), mask, heads) with the projection and the
// attention a few texts at a time on each thread (Linear::map_row_blocks):
// each block's projection (256 rows x 3 h, 1.2 MB at bert-base) stays in
// that thread's L2 for the AMX kernel of cpu_attention.h, where the whole
// projection (19 MB at batch 32) would go to memory and back between the
// two steps. bf16 x [b, t, h] where cpu_attention.h's kernel runs and
// the projection has the form (PackedLinear bf16 on AMX, Int8Linear on its
// own AMX or VNNI kernel); undefined elsewhere (the caller makes the two
// calls). The same bits as the projection and then
// the AMX kernel over the whole batch (tested). bert-base, batch 32, 2
// threads: one layer's projection + attention 10.7 ms against 8.0 + 5.5
// (bf16) and 8.5 against 5.6 + 5.3 (bf16+W8A8), BM_layer_breakdown; the
// forward, alternating runs, bf16 433-467 ms against 446-477, bf16+W8A8
// 313-331 against 341-365. (Session 18 tried this with a batch row a block
// and measured nothing: then the QKV product itself was not per thread.)
// EMBEVAL_NO_LAYER_BLOCKS=1 turns it off. (The attention output + add +
// LayerNorm the same way measured no clear gain and was dropped: forward
// bf16 441 / 475 / 442 ms against 482 / 523 / 447.)
at::Tensor blocked_qkv_attention(const Linear& qkv, const at::Tensor& x, const at::Tensor& additive_mask,
                                 int64_t heads);

// The ATen path fused_qkv_attention falls back to (any device and dtype):
// scaled_dot_product_attention on libtorch 2.x; on 1.x matmul + softmax in
// blocks of query rows whose scores (whole batch) fit max_score_bytes (bf16
// on a CPU without bf16 instructions in fp32, rounded once: attention.cpp).
at::Tensor aten_qkv_attention(const at::Tensor& qkv, const at::Tensor& additive_mask, int64_t heads,
                              int64_t max_score_bytes = int64_t{64} << 20);

}  // namespace embeval
