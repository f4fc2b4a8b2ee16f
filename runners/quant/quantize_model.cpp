#include "runners/quant/quantize_model.h"

#include <array>
#include <chrono>
#include <memory>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/error.h"
#include "runners/kernels/aten_quant_linear.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/packed_linear.h"
#include "runners/kernels/weight_only_linear.h"
#include "runners/quant/awq.h"
#include "runners/quant/calibration.h"
#include "runners/quant/fake_quant_linear.h"
#include "runners/quant/gptq.h"
#include "runners/quant/quantized_weight.h"

namespace embeval {

at::Tensor smoothquant_factors(const at::Tensor& act_absmax, const at::Tensor& weight, double alpha) {
  const at::Tensor w_max = weight.abs().amax(0).clamp_min(1e-5);
  return (act_absmax.to(at::kFloat).pow(alpha) / w_max.pow(1 - alpha)).clamp_min(1e-5);
}

std::unique_ptr<Linear> quantized_kernel(const QuantizedLinear& ql, LinearActivation activation, bool fake,
                                         at::ScalarType dtype, c10::Device device) {
  const QuantizedWeight& q = ql.weight;
  const at::Tensor& d = ql.input_divisor;
  EMBEVAL_ASSERT(!fake || (device.is_cpu() && dtype == at::kFloat));
  if (ql.int8_activations) {
    EMBEVAL_ASSERT(q.bits == 8 && q.symmetric && q.groups() == 1);
    if (fake) return std::make_unique<FakeW8A8Linear>(q.dequantize(), ql.bias, activation, d);
    const at::Tensor signed_codes = (q.codes.to(at::kInt) - 128).to(at::kChar);
    if (!device.is_cpu())
      return std::make_unique<AtenInt8Linear>(signed_codes, q.scales.view({-1}), ql.bias, activation, d, dtype, device);
    return std::make_unique<Int8Linear>(signed_codes, q.scales.view({-1}), ql.bias, activation, d);
  }
  if (!device.is_cpu())
    return std::make_unique<AtenWeightOnlyLinear>(q.codes, q.bits, q.scales, q.zeros, q.group_size, q.g_idx, ql.bias,
                                                  activation, d, dtype, device);
  if (fake)  // x / d through Q(W) equals x through Q(W) / d: the divisor goes into the columns
    return std::make_unique<PackedLinear>(d.defined() ? q.dequantize() / d.unsqueeze(0) : q.dequantize(), ql.bias,
                                          activation);
  return std::make_unique<WeightOnlyLinear>(q.codes, q.bits, q.scales, q.zeros, q.group_size, q.g_idx, ql.bias,
                                            activation, d);
}

QuantizeReport quantize_model(BertModel& model, const StateDict& weights, const QuantSpec& spec, bool fake,
                              const std::vector<CalibrationBatch>& calibration, std::vector<QuantizedLinear>* keep) {
  const std::string method = spec.name();
  if (spec.method != QuantMethod::rtn && calibration.empty())
    fail("{}: {} needs calibration texts (run with a suite or --task-dir, or --calib FILE)", method,
         spec.method == QuantMethod::gptq ? "GPTQ" : spec.method == QuantMethod::awq ? "AWQ" : "SmoothQuant");
  const c10::Device device = model.device();
  const at::ScalarType dtype = model.dtype();
  const bool cpu = device.is_cpu();
  const bool bf16 = dtype == at::kBFloat16;
  if (cpu && dtype != at::kFloat && !bf16)
    fail("{}: quantized models on the CPU compute their activations in fp32 or bf16, not {}", method,
         c10::toString(dtype));
  if (fake && !cpu)
    fail("{}: fakequant runs the dequantised weights through the CPU's fp32 kernels; use --device cpu (or drop "
         "fakequant)",
         method);
  if (dtype != at::kFloat && fake)
    fail("{}: fakequant runs the dequantised weights through the fp32 kernels; drop {} (or fakequant)", method,
         bf16 ? "bf16" : "fp16");

  const auto start = std::chrono::steady_clock::now();
  QuantizeReport r;
  ActivationAbsMax stats;
  if (spec.method == QuantMethod::smoothquant) stats = collect_activation_absmax(model, calibration);
  r.bytes_before = model.linear_weight_bytes();
  std::string kernel;
  const int64_t layers = model.config().num_hidden_layers;
  // GPTQ goes layer by layer (IST-DASLab/gptq's opt_sequential): the
  // calibration hidden states enter layer i as the already-quantized layers
  // before it made them; one pass of the float layer i collects H = sum x x^T
  // over real tokens for each of its Linears; after quantizing them the
  // hidden states move on through the quantized layer.
  //
  // AWQ goes layer by layer too, but as its reference does: each layer is
  // calibrated on the float output of the one before.
  LayerCalibration cal;
  int64_t calib_tokens = 0;
  if (spec.method == QuantMethod::gptq || spec.method == QuantMethod::awq) {
    c10::InferenceMode guard;
    for (const CalibrationBatch& b : calibration) {
      cal.hidden.push_back(model.embed(b.input_ids));
      cal.mask_bias.push_back(model.mask_bias(b.attention_mask));
      cal.valid.push_back(b.attention_mask.reshape({-1}).nonzero().squeeze(1));
      calib_tokens += cal.valid.back().size(0);
    }
  }
  AwqOptions awq;
  awq.bits = spec.weight_bits;
  awq.group_size = spec.group_size;
  std::vector<std::string> ratios;
  for (int64_t i = 0; i < layers; ++i) {
    std::array<at::Tensor, 4> hessian;
    if (spec.method == QuantMethod::gptq) {
      c10::InferenceMode guard;
      for (size_t b = 0; b < cal.hidden.size(); ++b) {
        const LinearObserver observe = [&](int64_t, LinearSlot slot, const at::Tensor& x) {
          at::Tensor rows = x.reshape({-1, x.size(-1)}).index_select(0, cal.valid[b]).to(at::kDouble);
          at::Tensor& h = hessian[static_cast<size_t>(slot)];
          h = h.defined() ? h.addmm_(rows.t(), rows) : at::mm(rows.t(), rows);
        };
        model.layer_forward(i, cal.hidden[b], cal.mask_bias[b], &observe);
      }
      // Accumulated where the activations are; GPTQ itself runs beside the CPU weights.
      for (at::Tensor& h : hessian)
        if (h.defined()) h = h.cpu();
    }
    AwqLayer scaled;
    if (spec.method == QuantMethod::awq) {
      scaled = awq_layer(model, weights, i, cal, awq);
      ratios.push_back(fmt::format("{}", fmt::join(scaled.ratio, "/")));
    }
    for (LinearSlot slot : LINEAR_SLOTS) {
      LinearParams p = spec.method == QuantMethod::awq ? scaled.params[static_cast<size_t>(slot)]
                                                       : model.linear_params(weights, i, slot);
      const at::Tensor divisor = scaled.divisor[static_cast<size_t>(slot)];
      const std::string tensor = model.weight_prefix() + p.name + ".weight";
      QuantizedLinear ql;
      ql.bias = p.bias;
      ql.input_divisor = divisor;
      if (spec.act_bits == 8) {
        if (spec.method == QuantMethod::smoothquant && (slot == LinearSlot::qkv || slot == LinearSlot::ffn_in)) {
          ql.input_divisor = smoothquant_factors(stats.of(i, slot), p.weight, spec.alpha);
          p.weight = p.weight * ql.input_divisor.unsqueeze(0);
        }
        ql.weight = quantize_rtn(p.weight, 8, 0, true, tensor);
        ql.int8_activations = true;
      } else if (spec.method == QuantMethod::gptq) {
        GptqOptions o;
        o.bits = spec.weight_bits;
        o.group_size = spec.group_size;
        o.act_order = spec.act_order;
        ql.weight = gptq_quantize(p.weight, hessian[static_cast<size_t>(slot)], o, tensor);
      } else {
        ql.weight = quantize_rtn(p.weight, spec.weight_bits, spec.group_size, spec.symmetric, tensor);
      }
      std::unique_ptr<Linear> op = quantized_kernel(ql, p.activation, fake, dtype, device);
      if (keep) {
        const std::vector<std::string> names = model.linear_names(i, slot);
        const int64_t rows = ql.weight.out_features() / static_cast<int64_t>(names.size());
        for (size_t k = 0; k < names.size(); ++k)
          keep->push_back(ql.rows(names[k], static_cast<int64_t>(k) * rows, rows));
      }
      if (kernel.empty()) {
        const auto* wo = bf16 && cpu ? dynamic_cast<const WeightOnlyLinear*>(op.get()) : nullptr;
        kernel = wo ? wo->bf16_implementation() : op->implementation() + (bf16 && cpu ? ", bf16 in and out" : "");
      }
      model.set_linear(i, slot, std::move(op));
    }
    if (spec.method == QuantMethod::gptq) {
      c10::InferenceMode guard;
      for (size_t b = 0; b < cal.hidden.size(); ++b)
        cal.hidden[b] = model.layer_forward(i, cal.hidden[b], cal.mask_bias[b]);
    }
  }
  r.bytes_after = model.linear_weight_bytes();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.description = fmt::format("{}{}: {} Linear layers, kernel {}{}{}", method, fake ? " (fake-quant)" : "", layers * 4,
                              kernel,
                              stats.tokens + calib_tokens > 0
                                  ? fmt::format(", calibrated on {} tokens", stats.tokens + calib_tokens)
                                  : "",
                              ratios.empty() ? "" : fmt::format(", AWQ scale exponents per layer (qkv/attn_out/ffn_in/ffn_out) {}",
                                                                fmt::join(ratios, " ")));
  return r;
}

}  // namespace embeval
