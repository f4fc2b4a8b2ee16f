#include "runners/quant/gptq.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include <ATen/ATen.h>

#include "harness/error.h"

namespace embeval {
namespace {

// GPTQ's quantizer over columns [c0, c1) of w, one (scale, zero) per row.
void find_params(const at::Tensor& w, int64_t c0, int64_t c1, int64_t maxq, at::Tensor& scale, at::Tensor& zero) {
  at::Tensor cols = w.narrow(1, c0, c1 - c0);
  at::Tensor xmin = at::clamp_max(cols.amin(1), 0.0), xmax = at::clamp_min(cols.amax(1), 0.0);
  at::Tensor both_zero = (xmin == 0).logical_and(xmax == 0);
  xmin = at::where(both_zero, at::full_like(xmin, -1.0), xmin);
  xmax = at::where(both_zero, at::full_like(xmax, 1.0), xmax);
  scale = round_to_fp16((xmax - xmin) / double(maxq)).to(at::kDouble);
  zero = at::round(-xmin / scale).clamp(0, maxq);
}

}  // namespace

QuantizedWeight gptq_quantize(const at::Tensor& weight, const at::Tensor& hessian, const GptqOptions& o,
                              const std::string& tensor) {
  EMBEVAL_ASSERT(weight.dim() == 2 && o.bits >= 2 && o.bits <= 8 && o.block_size > 0);
  const int64_t rows = weight.size(0), cols = weight.size(1);
  if (hessian.sizes() != at::IntArrayRef({cols, cols}))
    fail("{}: calibration statistics of {} inputs for a weight with {} input columns", tensor, hessian.size(0), cols);
  const int64_t groups = group_count(cols, o.group_size, "weight", tensor);
  const int64_t gs = cols / groups;
  const int64_t maxq = (int64_t{1} << o.bits) - 1;
  at::Tensor W = weight.to(at::kDouble).clone();
  if (!at::isfinite(W).all().item<bool>()) fail("{}: the weight has NaN or infinite values; cannot quantize it", tensor);
  at::Tensor H = hessian.to(at::kDouble).clone();
  if (!at::isfinite(H).all().item<bool>()) fail("{}: the calibration statistics have NaN or infinite values", tensor);

  // One group per row: parameters from the whole original row, before dead columns are zeroed.
  at::Tensor scale, zero;
  if (groups == 1) find_params(W, 0, cols, maxq, scale, zero);

  at::Tensor diag = H.diagonal();
  const at::Tensor dead = diag == 0;
  H.diagonal().masked_fill_(dead, 1.0);
  W.masked_fill_(dead.unsqueeze(0), 0.0);

  // Columns in processing order.
  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (o.act_order) {
    const at::Tensor dc = H.diagonal().contiguous();  // after the dead fix, as the reference
    std::vector<double> d(dc.data_ptr<double>(), dc.data_ptr<double>() + cols);
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return d[a] > d[b]; });
    at::Tensor p = at::tensor(perm, at::kLong);
    W = W.index_select(1, p);
    H = H.index_select(0, p).index_select(1, p);
  }
  const double damp = o.damp * H.diagonal().mean().item<double>();
  H.diagonal().add_(damp);
  auto [L, info1] = at::linalg_cholesky_ex(H);
  at::Tensor Hinv = at::cholesky_inverse(L);
  auto [U, info2] = at::linalg_cholesky_ex(Hinv, /*upper=*/true);
  if (info1.item<int>() != 0 || info2.item<int>() != 0 || !at::isfinite(U).all().item<bool>())
    fail("{}: the calibration statistics are not positive definite even after dampening", tensor);

  at::Tensor Q = at::empty({rows, cols}, at::kDouble);  // codes, processing order
  at::Tensor scales = at::empty({rows, groups}, at::kDouble), zeros = at::empty({rows, groups}, at::kDouble);
  if (groups == 1) scales.select(1, 0).copy_(scale), zeros.select(1, 0).copy_(zero);
  for (int64_t i1 = 0; i1 < cols; i1 += o.block_size) {
    const int64_t i2 = std::min(i1 + o.block_size, cols), count = i2 - i1;
    at::Tensor W1 = W.narrow(1, i1, count).clone();
    at::Tensor Err1 = at::zeros_like(W1);
    at::Tensor U1 = U.narrow(0, i1, count).narrow(1, i1, count);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t c = i1 + i;
      if (groups > 1 && c % gs == 0) {
        // The reference takes the group's range from the outer W, which holds
        // the updates of earlier blocks only.
        find_params(W, c, std::min(c + gs, cols), maxq, scale, zero);
        scales.select(1, c / gs).copy_(scale);
        zeros.select(1, c / gs).copy_(zero);
      }
      at::Tensor w = W1.select(1, i);
      at::Tensor q = (at::round(w / scale) + zero).clamp(0, maxq);
      Q.select(1, c).copy_(q);
      at::Tensor err = (w - scale * (q - zero)) / U1[i][i];
      W1.narrow(1, i, count - i).sub_(err.unsqueeze(1) * U1[i].narrow(0, i, count - i).unsqueeze(0));
      Err1.select(1, i).copy_(err);
    }
    if (i2 < cols) W.narrow(1, i2, cols - i2).sub_(at::mm(Err1, U.narrow(0, i1, count).narrow(1, i2, cols - i2)));
  }

  QuantizedWeight out;
  out.bits = o.bits;
  out.group_size = groups == 1 ? 0 : gs;
  out.symmetric = false;
  out.scales = scales.to(at::kFloat);
  out.zeros = zeros.to(at::kInt);
  if (!o.act_order) {
    out.codes = Q.to(at::kByte);
    return out;
  }
  // Back to the original column order; column j's group is its position in
  // the processing order over the group size (AutoGPTQ's g_idx).
  std::vector<int64_t> invperm(static_cast<size_t>(cols));
  for (int64_t k = 0; k < cols; ++k) invperm[static_cast<size_t>(perm[static_cast<size_t>(k)])] = k;
  at::Tensor inv = at::tensor(invperm, at::kLong);
  out.codes = Q.index_select(1, inv).to(at::kByte).contiguous();
  out.g_idx = inv.div(gs, "floor").to(at::kInt);
  if (groups == 1) out.g_idx = at::Tensor();
  return out;
}

}  // namespace embeval
