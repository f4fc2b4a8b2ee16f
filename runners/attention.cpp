#include "runners/attention.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/version.h>

#include "harness/error.h"

#ifdef EMBEVAL_HAVE_DNNL
#include "runners/onednn_util.h"
#endif

namespace embeval {
namespace {

at::Tensor aten_attention(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3, hd = h / heads;
  at::Tensor parts = qkv.view({b, t, 3, heads, hd}).permute({2, 0, 3, 1, 4});
  at::Tensor q = parts[0], k = parts[1], v = parts[2];  // [b, heads, t, hd]
#if TORCH_VERSION_MAJOR >= 2
  at::Tensor ctx = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).mul_(scale).add_(mask);
  at::Tensor ctx = at::matmul(at::softmax(scores, -1), v);
#endif
  return ctx.transpose(1, 2).reshape({b, t, h});
}

#ifdef EMBEVAL_HAVE_DNNL
using dnnl::memory;
using dt = memory::data_type;

// The two products for `g` batch rows at a time.
struct AttentionPrimitives {
  memory::desc q, kt, scores, mask, probs, v, ctx;
  dnnl::matmul score, context;
};

// Returns false when oneDNN offers only a reference kernel for these shapes.
bool make_primitives(int64_t g, int64_t t, int64_t heads, int64_t hd, dt type, AttentionPrimitives* p) {
  const int64_t h = heads * hd;
  const memory::dims qkv_strides = {t * 3 * h, hd, 3 * h, 1};  // [g, heads, t, hd] inside [g, t, 3, heads, hd]
  // scores = (Q K^T) * scale + mask, fp32 [g, heads, t, t].
  p->q = memory::desc({g, heads, t, hd}, type, qkv_strides);
  p->kt = memory::desc({g, heads, hd, t}, type, {t * 3 * h, hd, 1, 3 * h});
  p->scores = memory::desc({g, heads, t, t}, dt::f32, memory::format_tag::abcd);
  p->mask = memory::desc({g, 1, 1, t}, dt::f32, memory::format_tag::abcd);
  dnnl::post_ops ops;
  onednn::append_eltwise(ops, dnnl::algorithm::eltwise_linear, static_cast<float>(1.0 / std::sqrt(double(hd))), 0.f);
  ops.append_binary(dnnl::algorithm::binary_add, p->mask);
  dnnl::primitive_attr score_attr;
  score_attr.set_post_ops(ops);
  const auto score_pd = onednn::matmul_pd(p->q, p->kt, memory::desc(), p->scores, score_attr);
  // context = probs V, written as [g, t, heads, hd].
  p->probs = memory::desc({g, heads, t, t}, type, memory::format_tag::abcd);
  p->v = memory::desc({g, heads, t, hd}, type, qkv_strides);
  p->ctx = memory::desc({g, heads, t, hd}, type, {t * h, hd, h, 1});
  const auto ctx_pd = onednn::matmul_pd(p->probs, p->v, memory::desc(), p->ctx, dnnl::primitive_attr());
  if (onednn::is_reference_kernel(score_pd.impl_info_str()) || onednn::is_reference_kernel(ctx_pd.impl_info_str()))
    return false;
  p->score = dnnl::matmul(score_pd);
  p->context = dnnl::matmul(ctx_pd);
  return true;
}

// An undefined tensor when oneDNN offers only a reference kernel. Batch rows
// go through in groups whose fp32 scores fit in ~4 MB: at seq 512 the scores
// of a whole batch are hundreds of MB, and streaming them through memory
// three times (write, softmax, read) costs more than the products
// (bge-small shape, seq 512, 1 thread: 5.2 -> 6.9 sentences/s).
at::Tensor onednn_attention(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3, hd = h / heads;
  const dt type = onednn::type_of(qkv.scalar_type());
  const size_t elem = qkv.element_size();
  const int64_t group = std::clamp<int64_t>((int64_t{4} << 20) / (heads * t * t * 4), 1, b);

  AttentionPrimitives full, rest;
  if (!make_primitives(group, t, heads, hd, type, &full)) return at::Tensor();
  if (b % group != 0 && !make_primitives(b % group, t, heads, hd, type, &rest)) return at::Tensor();

  auto& engine = onednn::cpu_engine();
  dnnl::stream stream(engine);
  at::Tensor mask_f32 = mask.to(at::kFloat).contiguous();
  at::Tensor scores = at::empty({group, heads, t, t}, qkv.options().dtype(at::kFloat));
  at::Tensor probs = at::empty({group, heads, t, t}, qkv.options().dtype(at::kFloat));
  at::Tensor probs_typed = type == dt::f32 ? probs : at::empty({group, heads, t, t}, qkv.options());
  at::Tensor ctx = at::empty({b, t, h}, qkv.options());
  char* base = static_cast<char*>(qkv.data_ptr());
  for (int64_t start = 0; start < b; start += group) {
    const int64_t g = std::min(group, b - start);
    const AttentionPrimitives& p = g == group ? full : rest;
    char* rows = base + start * t * 3 * h * elem;
    p.score.execute(stream, {{DNNL_ARG_SRC, memory(p.q, engine, rows)},
                             {DNNL_ARG_WEIGHTS, memory(p.kt, engine, rows + h * elem)},
                             {DNNL_ARG_DST, memory(p.scores, engine, scores.data_ptr())},
                             {DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1,
                              memory(p.mask, engine, mask_f32.data_ptr<float>() + start * t)}});
    stream.wait();
    at::Tensor s = scores.narrow(0, 0, g), pr = probs.narrow(0, 0, g);
    at::_softmax_out(pr, s, -1, false);
    if (type != dt::f32) probs_typed.narrow(0, 0, g).copy_(pr);
    p.context.execute(stream, {{DNNL_ARG_SRC, memory(p.probs, engine, probs_typed.data_ptr())},
                               {DNNL_ARG_WEIGHTS, memory(p.v, engine, rows + 2 * h * elem)},
                               {DNNL_ARG_DST, memory(p.ctx, engine, static_cast<char*>(ctx.data_ptr()) +
                                                                     start * t * h * elem)}});
    stream.wait();
  }
  return ctx;
}
#endif

}  // namespace

at::Tensor fused_qkv_attention(const at::Tensor& qkv, const at::Tensor& additive_mask, int64_t heads) {
  if (qkv.dim() != 3 || qkv.size(2) % (3 * heads) != 0)
    fail("attention: qkv has shape [{}], expected [batch, seq, 3 * heads * head_dim]", fmt::join(qkv.sizes(), ", "));
#ifdef EMBEVAL_HAVE_DNNL
  const at::ScalarType type = qkv.scalar_type();
  if (qkv.device().is_cpu() && qkv.is_contiguous() && (type == at::kFloat || type == at::kBFloat16) &&
      qkv.numel() > 0) {
    try {
      at::Tensor ctx = onednn_attention(qkv, additive_mask, heads);
      if (ctx.defined()) return ctx;
    } catch (const dnnl::error&) {
      // no kernel for these strides on this CPU: ATen below
    }
  }
#endif
  return aten_attention(qkv, additive_mask, heads);
}

}  // namespace embeval
