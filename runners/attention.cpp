#include "runners/attention.h"

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

// nullopt-like: returns an undefined tensor when oneDNN offers only a reference kernel.
at::Tensor onednn_attention(const at::Tensor& qkv, const at::Tensor& mask, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = qkv.size(2) / 3, hd = h / heads;
  const dt type = onednn::type_of(qkv.scalar_type());
  const size_t elem = qkv.element_size();
  char* base = static_cast<char*>(qkv.data_ptr());
  const memory::dims qkv_strides = {t * 3 * h, hd, 3 * h, 1};  // [b, heads, t, hd] inside [b, t, 3, heads, hd]

  // scores = (Q K^T) * scale + mask, fp32 [b, heads, t, t].
  const memory::desc q_md({b, heads, t, hd}, type, qkv_strides);
  const memory::desc kt_md({b, heads, hd, t}, type, {t * 3 * h, hd, 1, 3 * h});
  const memory::desc scores_md({b, heads, t, t}, dt::f32, memory::format_tag::abcd);
  const memory::desc mask_md({b, 1, 1, t}, dt::f32, memory::format_tag::abcd);
  dnnl::post_ops ops;
  onednn::append_eltwise(ops, dnnl::algorithm::eltwise_linear, static_cast<float>(1.0 / std::sqrt(double(hd))), 0.f);
  ops.append_binary(dnnl::algorithm::binary_add, mask_md);
  dnnl::primitive_attr score_attr;
  score_attr.set_post_ops(ops);
  const auto score_pd = onednn::matmul_pd(q_md, kt_md, memory::desc(), scores_md, score_attr);

  const memory::desc probs_md({b, heads, t, t}, type, memory::format_tag::abcd);
  const memory::desc v_md({b, heads, t, hd}, type, qkv_strides);
  const memory::desc ctx_md({b, heads, t, hd}, type, {t * h, hd, h, 1});  // written as [b, t, heads, hd]
  const auto ctx_pd = onednn::matmul_pd(probs_md, v_md, memory::desc(), ctx_md, dnnl::primitive_attr());
  if (onednn::is_reference_kernel(score_pd.impl_info_str()) || onednn::is_reference_kernel(ctx_pd.impl_info_str()))
    return at::Tensor();

  auto& engine = onednn::cpu_engine();
  dnnl::stream stream(engine);
  at::Tensor mask_f32 = mask.to(at::kFloat).contiguous();
  at::Tensor scores = at::empty({b, heads, t, t}, qkv.options().dtype(at::kFloat));
  dnnl::matmul(score_pd).execute(
      stream, {{DNNL_ARG_SRC, memory(q_md, engine, base)},
               {DNNL_ARG_WEIGHTS, memory(kt_md, engine, base + h * elem)},
               {DNNL_ARG_DST, memory(scores_md, engine, scores.data_ptr())},
               {DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, memory(mask_md, engine, mask_f32.data_ptr())}});
  stream.wait();
  at::Tensor probs = at::softmax(scores, -1);
  if (qkv.scalar_type() != at::kFloat) probs = probs.to(qkv.scalar_type());
  at::Tensor ctx = at::empty({b, t, h}, qkv.options());
  dnnl::matmul(ctx_pd).execute(stream, {{DNNL_ARG_SRC, memory(probs_md, engine, probs.data_ptr())},
                                        {DNNL_ARG_WEIGHTS, memory(v_md, engine, base + 2 * h * elem)},
                                        {DNNL_ARG_DST, memory(ctx_md, engine, ctx.data_ptr())}});
  stream.wait();
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
