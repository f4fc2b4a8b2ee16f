#include "runners/quant/quantize_model.h"

#include <chrono>
#include <memory>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "harness/error.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/packed_linear.h"
#include "runners/kernels/weight_only_linear.h"
#include "runners/quant/calibration.h"
#include "runners/quant/fake_quant_linear.h"
#include "runners/quant/quantized_weight.h"

namespace embeval {

at::Tensor smoothquant_factors(const at::Tensor& act_absmax, const at::Tensor& weight, double alpha) {
  const at::Tensor w_max = weight.abs().amax(0).clamp_min(1e-5);
  return (act_absmax.to(at::kFloat).pow(alpha) / w_max.pow(1 - alpha)).clamp_min(1e-5);
}

QuantizeReport quantize_model(BertModel& model, const StateDict& weights, const QuantSpec& spec, bool fake,
                              const std::vector<CalibrationBatch>& calibration) {
  const std::string method = spec.name();
  if (spec.method == QuantMethod::awq || spec.method == QuantMethod::gptq)
    fail("{}: AWQ and GPTQ are not built yet; available now: wo-int8[-gN], wo-int4[-gN], w8a8, sq-w8a8-aX", method);
  if (spec.method == QuantMethod::smoothquant && calibration.empty())
    fail("{}: SmoothQuant needs calibration texts (run with a suite or --task-dir, or --calib FILE)", method);
  if (model.dtype() != at::kFloat)
    fail("{}: quantized models compute their activations in fp32; drop --dtype {} (or the dtype token)", method,
         c10::toString(model.dtype()));
  if (!model.device().is_cpu()) fail("{}: the quantized kernels run on the CPU; use --device cpu", method);

  const auto start = std::chrono::steady_clock::now();
  QuantizeReport r;
  ActivationAbsMax stats;
  if (spec.method == QuantMethod::smoothquant) stats = collect_activation_absmax(model, calibration);
  r.bytes_before = model.linear_weight_bytes();
  std::string kernel;
  const int64_t layers = model.config().num_hidden_layers;
  for (int64_t i = 0; i < layers; ++i)
    for (LinearSlot slot : LINEAR_SLOTS) {
      LinearParams p = model.linear_params(weights, i, slot);
      const std::string tensor = model.weight_prefix() + p.name + ".weight";
      std::unique_ptr<Linear> op;
      if (spec.act_bits == 8) {
        at::Tensor smooth;
        if (spec.method == QuantMethod::smoothquant && (slot == LinearSlot::qkv || slot == LinearSlot::ffn_in)) {
          smooth = smoothquant_factors(stats.of(i, slot), p.weight, spec.alpha);
          p.weight = p.weight * smooth.unsqueeze(0);
        }
        QuantizedWeight q = quantize_rtn(p.weight, 8, 0, true, tensor);
        if (fake) {
          op = std::make_unique<FakeW8A8Linear>(q.dequantize(), p.bias, p.activation, smooth);
        } else {
          at::Tensor signed_codes = (q.codes.to(at::kInt) - 128).to(at::kChar);
          op = std::make_unique<Int8Linear>(signed_codes, q.scales.view({-1}), p.bias, p.activation, smooth);
        }
      } else {
        QuantizedWeight q = quantize_rtn(p.weight, spec.weight_bits, spec.group_size, spec.symmetric, tensor);
        if (fake)
          op = std::make_unique<PackedLinear>(q.dequantize(), p.bias, p.activation);
        else
          op = std::make_unique<WeightOnlyLinear>(q.codes, q.bits, q.scales, q.zeros, q.group_size, q.g_idx, p.bias,
                                                  p.activation);
      }
      if (kernel.empty()) kernel = op->implementation();
      model.set_linear(i, slot, std::move(op));
    }
  r.bytes_after = model.linear_weight_bytes();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.description = fmt::format("{}{}: {} Linear layers, kernel {}{}", method, fake ? " (fake-quant)" : "", layers * 4,
                              kernel,
                              stats.tokens > 0 ? fmt::format(", calibrated on {} tokens", stats.tokens) : "");
  return r;
}

}  // namespace embeval
