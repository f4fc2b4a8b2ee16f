#include "runners/quant/quantized_weight.h"

#include <ATen/ATen.h>

#include "harness/error.h"

namespace embeval {

int64_t group_count(int64_t in, int64_t group_size, const char* tensor_kind, const std::string& tensor) {
  if (group_size <= 0 || group_size >= in) return 1;
  if (in % group_size != 0)
    fail("{}: group size {} does not divide the {}'s {} input columns; pick a group size that divides {}", tensor,
         group_size, tensor_kind, in, in);
  return in / group_size;
}

at::Tensor round_to_fp16(const at::Tensor& x) { return x.to(at::kHalf).to(at::kFloat); }

at::Tensor QuantizedWeight::column_groups() const {
  if (g_idx.defined()) return g_idx.to(at::kLong);
  const int64_t in = in_features();
  const int64_t g = group_size <= 0 || group_size >= in ? in : group_size;
  return at::arange(in, at::kLong).div(g, "floor");
}

at::Tensor QuantizedWeight::dequantize() const {
  at::Tensor cols = column_groups();
  at::Tensor s = scales.index_select(1, cols);                 // [out, in]
  at::Tensor z = zeros.to(at::kFloat).index_select(1, cols);   // [out, in]
  return s * (codes.to(at::kFloat) - z);
}

int64_t QuantizedWeight::packed_bytes() const {
  const int64_t n = codes.numel();
  const int64_t groups_total = scales.numel();
  // codes at `bits` each, fp16 scales, zeros packed at `bits` each (none stored when symmetric int8).
  int64_t bytes = (n * bits + 7) / 8 + groups_total * 2;
  if (!symmetric) bytes += (groups_total * bits + 7) / 8;
  return bytes;
}

QuantizedLinear QuantizedLinear::rows(const std::string& row_name, int64_t begin, int64_t count) const {
  QuantizedLinear r = *this;
  r.name = row_name;
  r.weight.codes = weight.codes.narrow(0, begin, count).contiguous();
  r.weight.scales = weight.scales.narrow(0, begin, count).contiguous();
  r.weight.zeros = weight.zeros.narrow(0, begin, count).contiguous();
  if (bias.defined()) r.bias = bias.narrow(0, begin, count).contiguous();
  return r;
}

QuantizedWeight quantize_rtn(const at::Tensor& weight, int bits, int64_t group_size, bool symmetric,
                             const std::string& tensor) {
  EMBEVAL_ASSERT(weight.dim() == 2);
  EMBEVAL_ASSERT(bits >= 2 && bits <= 8);
  const int64_t out = weight.size(0), in = weight.size(1);
  const int64_t groups = group_count(in, group_size, "weight", tensor);
  at::Tensor w = weight.to(at::kFloat).contiguous().view({out, groups, in / groups});
  if (!at::isfinite(w).all().item<bool>()) fail("{}: the weight has NaN or infinite values; cannot quantize it", tensor);
  const int64_t maxq = (int64_t{1} << bits) - 1;
  QuantizedWeight q;
  q.bits = bits;
  q.group_size = groups == 1 ? 0 : in / groups;
  q.symmetric = symmetric;
  at::Tensor scale, zero;
  if (symmetric) {
    const int64_t half = int64_t{1} << (bits - 1);
    scale = round_to_fp16(w.abs().amax(2, true).clamp_min(1e-5) / double(half - 1));  // [out, groups, 1]
    // A scale that rounded down must not push a code past +-(half - 1).
    zero = at::full_like(scale, double(half));
    at::Tensor c = (at::round(w / scale).clamp(-(half - 1), half - 1) + zero);
    q.codes = c.view({out, in}).to(at::kByte);
  } else {
    at::Tensor mx = w.amax(2, true), mn = w.amin(2, true);
    scale = round_to_fp16((mx - mn).clamp_min(1e-5) / double(maxq));
    zero = (-at::round(mn / scale)).clamp(0, maxq);
    q.codes = (at::round(w / scale) + zero).clamp(0, maxq).view({out, in}).to(at::kByte);
  }
  q.scales = scale.view({out, groups}).contiguous();
  q.zeros = zero.view({out, groups}).to(at::kInt).contiguous();
  return q;
}

}  // namespace embeval
