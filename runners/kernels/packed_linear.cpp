#include "runners/kernels/packed_linear.h"

#include <ATen/ATen.h>

#include "harness/error.h"

#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"
#endif

namespace embeval {

#ifdef EMBEVAL_HAVE_DNNL
using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;
using onednn::cpu_engine;
#endif

struct PackedLinear::Impl {
  at::Tensor weight, bias;  // as given: the at::linear path, and shapes
  LinearActivation activation = LinearActivation::none;
#ifdef EMBEVAL_HAVE_DNNL
  bool packed = false;
  at::ScalarType type = at::kFloat;  // what was packed; inputs must match
  std::unique_ptr<onednn::RowsMatmul> matmul;
  memory packed_weight;
  at::Tensor packed_storage, bias_f32;
  std::string kernel;
#endif
};

PackedLinear::PackedLinear() = default;
PackedLinear::~PackedLinear() = default;
PackedLinear::PackedLinear(PackedLinear&&) noexcept = default;
PackedLinear& PackedLinear::operator=(PackedLinear&&) noexcept = default;

bool PackedLinear::have_onednn() {
#ifdef EMBEVAL_HAVE_DNNL
  return true;
#else
  return false;
#endif
}

PackedLinear::PackedLinear(const at::Tensor& weight, const at::Tensor& bias, LinearActivation activation)
    : impl_(std::make_unique<Impl>()) {
  if (weight.dim() != 2) fail("PackedLinear: weight must be 2-D, got {} dimensions", weight.dim());
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(0)))
    fail("PackedLinear: bias of {} values for {} outputs", bias.numel(), weight.size(0));
  Impl& m = *impl_;
  m.weight = weight.contiguous();
  m.bias = bias.defined() ? bias.contiguous() : bias;
  m.activation = activation;
#ifdef EMBEVAL_HAVE_DNNL
  const at::ScalarType type = weight.scalar_type();
  if (!weight.device().is_cpu() || (type != at::kFloat && type != at::kBFloat16)) return;
  const memory::dim n_out = weight.size(0), n_in = weight.size(1);
  try {
    // One primitive per count of rows of x (onednn::RowsMatmul says why),
    // the weights packed for them once.
    const memory::desc weight_any({n_in, n_out}, onednn::type_of(type), tag::any);
    const memory::desc bias_md({1, n_out}, dt::f32, tag::ab);
    dnnl::post_ops ops;
    onednn::append_activation(ops, activation);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const dt io = onednn::type_of(type);
    m.matmul = std::make_unique<onednn::RowsMatmul>(
        [n_in, n_out, io, bias_md, attr](memory::dim rows, const memory::desc& weights) {
          return onednn::matmul_pd(memory::desc({rows, n_in}, io, tag::ab), weights, bias_md,
                                   memory::desc({rows, n_out}, io, tag::ab), attr);
        },
        weight_any);
    m.kernel = m.matmul->kernel();
    if (onednn::is_reference_kernel(m.kernel.c_str())) return;  // e.g. bf16 without AVX-512

    // W is [out, in] row-major: the [in, out] matrix oneDNN multiplies by, with "ba" strides.
    memory plain(memory::desc({n_in, n_out}, onednn::type_of(type), tag::ba), cpu_engine(), m.weight.data_ptr());
    m.packed_storage = at::empty({static_cast<int64_t>(m.matmul->weights_desc().get_size())}, at::kByte);
    m.packed_weight = memory(m.matmul->weights_desc(), cpu_engine(), m.packed_storage.data_ptr());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain, m.packed_weight).execute(stream, plain, m.packed_weight);
    stream.wait();
    m.bias_f32 = m.bias.defined() ? m.bias.to(at::kFloat).contiguous() : at::zeros({n_out}, at::kFloat);
    m.packed = true;
    m.type = type;
    m.weight = at::Tensor();  // the packed copy is all the CPU path needs
  } catch (const dnnl::error&) {
    // No oneDNN kernel for this shape / type on this CPU: at::linear it is.
  }
#endif
}

at::Tensor PackedLinear::operator()(const at::Tensor& x) const {
  const Impl& m = *impl_;
#ifdef EMBEVAL_HAVE_DNNL
  if (m.packed) {
    const int64_t n_in = onednn::dims_of(m.packed_weight.get_desc())[0], n_out = m.bias_f32.size(0);
    if (x.size(-1) != n_in) fail("PackedLinear: input has {} features, the layer takes {}", x.size(-1), n_in);
    if (x.scalar_type() != m.type || !x.device().is_cpu())
      fail("PackedLinear: input is {} on {}; the layer was packed for {} on cpu", c10::toString(x.scalar_type()),
           x.device().str(), c10::toString(m.type));
    at::Tensor src = x.contiguous();
    const int64_t rows = src.numel() / n_in;
    std::vector<int64_t> out_shape = x.sizes().vec();
    out_shape.back() = n_out;
    at::Tensor dst = at::empty(out_shape, src.options());
    if (rows == 0) return dst;
    const dt type = onednn::type_of(src.scalar_type());
    memory src_m(memory::desc({rows, n_in}, type, tag::ab), cpu_engine(), src.data_ptr());
    memory dst_m(memory::desc({rows, n_out}, type, tag::ab), cpu_engine(), dst.data_ptr());
    memory bias_m(memory::desc({1, n_out}, dt::f32, tag::ab), cpu_engine(), m.bias_f32.data_ptr());
    dnnl::stream stream(cpu_engine());
    m.matmul->get(rows).execute(stream, {{DNNL_ARG_SRC, src_m},
                              {DNNL_ARG_WEIGHTS, m.packed_weight},
                              {DNNL_ARG_BIAS, bias_m},
                              {DNNL_ARG_DST, dst_m}});
    stream.wait();
    return dst;
  }
#endif
  return apply_activation(at::linear(x, m.weight, m.bias), m.activation);
}

int64_t PackedLinear::weight_bytes() const {
  if (!impl_) return 0;
  int64_t bytes = impl_->bias.defined() ? impl_->bias.nbytes() : 0;
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_->packed) return bytes + impl_->packed_storage.nbytes();
#endif
  return bytes + impl_->weight.nbytes();
}

std::string PackedLinear::implementation() const {
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_ && impl_->packed) return "onednn:" + impl_->kernel;
#endif
  return "aten";
}

}  // namespace embeval
