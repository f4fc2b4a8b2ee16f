#include "runners/bert/bert_layer_blocks.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "harness/error.h"
#include "runners/kernels/cpu_attention.h"
#include "runners/kernels/layer_norm.h"

namespace embeval {

namespace {

// Rows a block: whole texts, as many as fit (a text alone where it is
// longer). 256 rows keep the block's widest activation (the FFN middle,
// 256 x 3,072 bf16 at bert-base: 1.5 MB) inside a 2 MB L2, as the FFN pair's
// own blocks do (packed_linear.cpp).
constexpr int64_t BLOCK_ROWS = 256;

// A thread's buffer of bf16 activations, 64-byte aligned: the tile loads
// and stores read and write whole rows of 64 bytes, and a row across two
// cache lines costs two accesses.
class AlignedRows {
 public:
  explicit AlignedRows(int64_t elements)
      : p_(static_cast<uint16_t*>(std::aligned_alloc(64, (static_cast<size_t>(elements) * 2 + 63) / 64 * 64))) {
    if (!p_) fail("layer blocks: out of memory for {} activations", elements);
  }
  ~AlignedRows() { std::free(p_); }
  AlignedRows(const AlignedRows&) = delete;
  AlignedRows& operator=(const AlignedRows&) = delete;
  uint16_t* data() const { return p_; }

 private:
  uint16_t* p_;
};

}  // namespace

at::Tensor blocked_bert_layer(const LayerBlockParts& p, const at::Tensor& x, const at::Tensor& additive_mask) {
  const char* off = std::getenv("EMBEVAL_NO_LAYER_BLOCKS");
  if ((off && *off == '1') || x.scalar_type() != at::kBFloat16 || !x.device().is_cpu() || x.dim() != 3 ||
      p.heads <= 0 || p.ffn <= 0 || bf16_attention_products() == Bf16AttentionProducts::none)
    return at::Tensor();
  for (const Linear* l : {&p.qkv, &p.attn_out, &p.ffn_in, &p.ffn_out})
    if (!l->runs_rows()) return at::Tensor();
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), hd = h / p.heads;
  if (b == 0 || t == 0 || h % p.heads != 0 || hd % 2 != 0) return at::Tensor();
  const int64_t texts = std::max<int64_t>(1, BLOCK_ROWS / t), R = texts * t, rows = b * t;
  const int64_t blocks = (b + texts - 1) / texts;
  if (blocks < 2 * at::get_num_threads()) return at::Tensor();  // too few to share out
  const at::Tensor src = x.contiguous();
  const at::Tensor mask = additive_mask.to(at::kFloat).expand({b, 1, 1, t}).reshape({b, t}).contiguous();
  // The attention block's residual is the layer's input, last read by the
  // projection (evicted since by the attention and the output product).
  const AddLayerNormRows attn_ln(p.attn_ln_w, p.attn_ln_b, p.eps, h, true), ffn_ln(p.ffn_ln_w, p.ffn_ln_b, p.eps, h);
  at::Tensor out = at::empty({b, t, h}, src.options());
  const auto* xp = reinterpret_cast<const uint16_t*>(src.data_ptr<at::BFloat16>());
  const float* mp = mask.data_ptr<float>();
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    // wide: the projection's Q K V, then the FFN middle; narrow: the
    // attention's context, then the FFN output; y: the attention block's
    // output, normalised in place.
    AlignedRows wide(R * std::max(3 * h, p.ffn)), narrow(R * h), y(R * h);
    std::vector<float> v(static_cast<size_t>(h));
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * R, rr = std::min(R, rows - r0);
      const uint16_t* xb = xp + r0 * h;
      p.qkv.run_rows(xb, rr, wide.data());
      if (!bf16_attention(wide.data(), mp + r0, rr / t, t, p.heads, hd, narrow.data()))
        fail("attention: the bf16 kernel declined a block it was checked for");
      p.attn_out.run_rows(narrow.data(), rr, y.data());
      attn_ln(y.data(), xb, rr, v.data(), y.data());
      p.ffn_in.run_rows(y.data(), rr, wide.data());
      p.ffn_out.run_rows(wide.data(), rr, narrow.data());
      ffn_ln(narrow.data(), y.data(), rr, v.data(), op + r0 * h);
    }
  });
  return out;
}

}  // namespace embeval
