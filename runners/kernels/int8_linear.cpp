#include "runners/kernels/int8_linear.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "harness/error.h"
#include "runners/kernels/cpu_dispatch.h"

#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/onednn_util.h"
#endif

namespace embeval {

#ifdef EMBEVAL_HAVE_DNNL
using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;
using onednn::cpu_engine;

namespace {

// s8 [M (runtime), K] x s8 [K, N] (packed) -> s32 [M, N].
struct S8Gemm {
  dnnl::matmul matmul;
  memory packed_weight;
  at::Tensor packed_storage;
  std::string kernel;
  int64_t k = 0, n = 0;

  // weight: int8 [n, k] row-major. Throws dnnl::error when oneDNN has no kernel.
  explicit S8Gemm(const at::Tensor& weight) : k(weight.size(1)), n(weight.size(0)) {
    const memory::desc src_md({DNNL_RUNTIME_DIM_VAL, k}, dt::s8, tag::ab);
    const memory::desc weight_any({k, n}, dt::s8, tag::any);
    const memory::desc dst_md({DNNL_RUNTIME_DIM_VAL, n}, dt::s32, tag::ab);
    const dnnl::matmul::primitive_desc pd = onednn::matmul_pd(src_md, weight_any, memory::desc(), dst_md, {});
    kernel = pd.impl_info_str();
    memory plain(memory::desc({k, n}, dt::s8, tag::ba), cpu_engine(), weight.data_ptr());
    packed_storage = at::empty({static_cast<int64_t>(pd.weights_desc().get_size())}, at::kByte);
    packed_weight = memory(pd.weights_desc(), cpu_engine(), packed_storage.data_ptr());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain, packed_weight).execute(stream, plain, packed_weight);
    stream.wait();
    matmul = dnnl::matmul(pd);
  }

  // src int8 [rows, k] contiguous -> int32 [rows, n].
  at::Tensor operator()(const at::Tensor& src) const {
    const int64_t rows = src.size(0);
    at::Tensor dst = at::empty({rows, n}, at::kInt);
    if (rows == 0) return dst;
    memory src_m(memory::desc({rows, k}, dt::s8, tag::ab), cpu_engine(), src.data_ptr());
    memory dst_m(memory::desc({rows, n}, dt::s32, tag::ab), cpu_engine(), dst.data_ptr());
    dnnl::stream stream(cpu_engine());
    matmul.execute(stream, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, packed_weight}, {DNNL_ARG_DST, dst_m}});
    stream.wait();
    return dst;
  }
};

}  // namespace
#endif

bool onednn_int8_gemm_is_exact() {
#ifdef EMBEVAL_HAVE_DNNL
  static bool exact = false;
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      // Extremes of both signs: 16-bit pair sums of u8 x s8 products (what
      // non-VNNI kernels do after shifting s8 sources by 128) overflow here.
      const int64_t k = 256, n = 16;
      at::Tensor w = at::full({n, k}, 127, at::kChar);
      w.narrow(0, 0, n / 2).fill_(-127);
      at::Tensor x = at::full({4, k}, 127, at::kChar);
      x[1].fill_(-127);
      x[2].copy_(at::where(at::arange(k) % 2 == 0, at::full({k}, 127, at::kChar), at::full({k}, -127, at::kChar)));
      x[3].fill_(1);
      at::Tensor got = S8Gemm(w)(x.contiguous());
      at::Tensor want = at::mm(x.to(at::kDouble), w.to(at::kDouble).t()).to(at::kInt);
      exact = got.equal(want);
    } catch (const dnnl::error&) {
      exact = false;
    }
  });
  return exact;
#else
  return false;
#endif
}

namespace {

// max_k |x[k] / smooth[k]| (no smooth: |x[k]|) over one row, NaN when any
// element is NaN or infinite. Eight independent lanes so the loop vectorises
// without reassociating anything.
template <bool SMOOTH>
EMBEVAL_CLONES float row_absmax(const float* __restrict__ x, const float* __restrict__ sm, int64_t n) {
  float m[8] = {0, 0, 0, 0, 0, 0, 0, 0}, probe[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) {
      const float v = SMOOTH ? x[k + j] / sm[k + j] : x[k + j];
      const float a = std::fabs(v);
      m[j] = m[j] > a ? m[j] : a;
      probe[j] += v * 0.f;  // NaN if v is NaN or infinite
    }
  for (; k < n; ++k) {
    const float v = SMOOTH ? x[k] / sm[k] : x[k];
    m[0] = std::max(m[0], std::fabs(v));
    probe[0] += v * 0.f;
  }
  float r = 0, p = 0;
  for (int j = 0; j < 8; ++j) r = std::max(r, m[j]), p += probe[j];
  return p == 0 ? r : NAN;
}

// codes = round-half-even(x / scale) clamped to +-127. Adding and
// subtracting 1.5 * 2^23 rounds a float below 2^22 in magnitude to the
// nearest integer, ties to even, in the default rounding mode: what
// torch.round does, without a libm call per element.
template <bool SMOOTH>
EMBEVAL_CLONES void row_quantize(const float* __restrict__ x, const float* __restrict__ sm, int64_t n, float scale,
                                 int8_t* __restrict__ out) {
  const float magic = 12582912.f;
  for (int64_t k = 0; k < n; ++k) {
    const float v = (SMOOTH ? x[k] / sm[k] : x[k]) / scale;
    float q = (v + magic) - magic;
    q = q > 127.f ? 127.f : (q < -127.f ? -127.f : q);
    out[k] = static_cast<int8_t>(q);
  }
}

}  // namespace

std::pair<at::Tensor, at::Tensor> quantize_per_token(const at::Tensor& x_in, const at::Tensor& smooth_in) {
  EMBEVAL_ASSERT(x_in.dim() == 2 && x_in.scalar_type() == at::kFloat);
  at::Tensor x = x_in.contiguous();
  const int64_t rows = x.size(0), in = x.size(1);
  at::Tensor smooth = smooth_in.defined() ? smooth_in.to(at::kFloat).contiguous() : smooth_in;
  EMBEVAL_ASSERT(!smooth.defined() || smooth.numel() == in);
  at::Tensor codes = at::empty({rows, in}, at::kChar), scales = at::empty({rows}, at::kFloat);
  const float* xp = x.data_ptr<float>();
  const float* sp = smooth.defined() ? smooth.data_ptr<float>() : nullptr;
  int8_t* cp = codes.data_ptr<int8_t>();
  float* scp = scales.data_ptr<float>();
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = xp + r * in;
      int8_t* cr = cp + r * in;
      const float amax = sp ? row_absmax<true>(xr, sp, in) : row_absmax<false>(xr, nullptr, in);
      if (std::isnan(amax)) {  // NaN in, NaN out: never a silently finite vector
        std::fill(cr, cr + in, int8_t{0});
        scp[r] = NAN;
        continue;
      }
      const float scale = std::max(amax, 1e-5f) / 127.f;
      if (sp)
        row_quantize<true>(xr, sp, in, scale, cr);
      else
        row_quantize<false>(xr, nullptr, in, scale, cr);
      scp[r] = scale;
    }
  });
  return {codes, scales};
}

struct Int8Linear::Impl {
  int64_t in = 0, out = 0;
  at::Tensor weight_scales, bias, smooth;  // float [out], float [out] or undefined, float [in] or undefined
  LinearActivation activation = LinearActivation::none;
  at::Tensor weight;                       // int8 [out, in], kept for the emulated path and weight_bytes
  PackedLinear emulated;                   // the int8 values as fp32, when no exact int8 GEMM
  bool use_int8 = false;
  std::string why;
#ifdef EMBEVAL_HAVE_DNNL
  std::unique_ptr<S8Gemm> gemm;
#endif
};

Int8Linear::Int8Linear() = default;
Int8Linear::~Int8Linear() = default;
Int8Linear::Int8Linear(Int8Linear&&) noexcept = default;
Int8Linear& Int8Linear::operator=(Int8Linear&&) noexcept = default;

Int8Linear::Int8Linear(const at::Tensor& weight, const at::Tensor& weight_scales, const at::Tensor& bias,
                       LinearActivation activation, const at::Tensor& smooth)
    : impl_(std::make_unique<Impl>()) {
  if (weight.dim() != 2 || weight.scalar_type() != at::kChar)
    fail("Int8Linear: weight must be int8 [out, in], got {} with {} dimensions", c10::toString(weight.scalar_type()),
         weight.dim());
  Impl& m = *impl_;
  m.out = weight.size(0);
  m.in = weight.size(1);
  if (weight_scales.numel() != m.out) fail("Int8Linear: {} weight scales for {} outputs", weight_scales.numel(), m.out);
  if (bias.defined() && bias.numel() != m.out) fail("Int8Linear: bias of {} values for {} outputs", bias.numel(), m.out);
  if (smooth.defined() && smooth.numel() != m.in) fail("Int8Linear: {} smoothing factors for {} inputs", smooth.numel(), m.in);
  m.weight = weight.contiguous();
  m.weight_scales = weight_scales.to(at::kFloat).contiguous();
  m.bias = bias.defined() ? bias.to(at::kFloat).contiguous() : bias;
  m.smooth = smooth.defined() ? smooth.to(at::kFloat).contiguous() : smooth;
  m.activation = activation;
#ifdef EMBEVAL_HAVE_DNNL
  if (onednn_int8_gemm_is_exact()) {
    try {
      m.gemm = std::make_unique<S8Gemm>(m.weight);
      if (onednn::is_reference_kernel(m.gemm->kernel.c_str())) {
        m.why = "oneDNN has only its reference int8 kernel here";
        m.gemm.reset();
      } else {
        m.use_int8 = true;
      }
    } catch (const dnnl::error&) {
      m.why = "oneDNN has no int8 kernel for this layer";
    }
  } else {
    m.why = "this CPU's oneDNN int8 kernel saturates 16-bit pair sums (no VNNI)";
  }
#else
  m.why = "built without oneDNN";
#endif
  if (!m.use_int8) m.emulated = PackedLinear(m.weight.to(at::kFloat), at::Tensor(), LinearActivation::none);
}

at::Tensor Int8Linear::operator()(const at::Tensor& x) const {
  const Impl& m = *impl_;
  if (x.size(-1) != m.in) fail("Int8Linear: input has {} features, the layer takes {}", x.size(-1), m.in);
  if (x.scalar_type() != at::kFloat || !x.device().is_cpu())
    fail("Int8Linear: input is {} on {}; the layer takes float32 on cpu", c10::toString(x.scalar_type()), x.device().str());
  const at::Tensor x2 = x.reshape({-1, m.in});
  auto [codes, sx] = quantize_per_token(x2, m.smooth);
  at::Tensor acc;  // [rows, out], int32 or float
#ifdef EMBEVAL_HAVE_DNNL
  if (m.use_int8) acc = (*m.gemm)(codes);
#endif
  if (!acc.defined()) acc = m.emulated(codes.to(at::kFloat));
  const int64_t rows = x2.size(0), out = m.out;
  at::Tensor y = at::empty({rows, out}, at::kFloat);
  const float* sxp = sx.data_ptr<float>();
  const float* swp = m.weight_scales.data_ptr<float>();
  const float* bp = m.bias.defined() ? m.bias.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const bool int_acc = acc.scalar_type() == at::kInt;
  const int32_t* ai = int_acc ? acc.data_ptr<int32_t>() : nullptr;
  const float* af = int_acc ? nullptr : acc.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float s = sxp[r];
      float* yr = yp + r * out;
      if (int_acc) {
        const int32_t* a = ai + r * out;
        for (int64_t n = 0; n < out; ++n) yr[n] = static_cast<float>(a[n]) * (s * swp[n]) + (bp ? bp[n] : 0.f);
      } else {
        const float* a = af + r * out;
        for (int64_t n = 0; n < out; ++n) yr[n] = a[n] * (s * swp[n]) + (bp ? bp[n] : 0.f);
      }
    }
  });
  y = apply_activation(y, m.activation);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  return y.view(shape);
}

std::string Int8Linear::implementation() const {
#ifdef EMBEVAL_HAVE_DNNL
  if (impl_ && impl_->use_int8) return "onednn:" + impl_->gemm->kernel + " s8s8s32";
#endif
  return impl_ ? "fp32-emulated (" + impl_->why + ")" : "none";
}

int64_t Int8Linear::weight_bytes() const { return impl_ ? impl_->in * impl_->out + impl_->out * 4 : 0; }

}  // namespace embeval
