#include "runners/quant/calibration.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

namespace embeval {

ActivationAbsMax collect_activation_absmax(const BertModel& model, const std::vector<CalibrationBatch>& batches) {
  c10::InferenceMode guard;
  ActivationAbsMax stats;
  stats.absmax.resize(static_cast<size_t>(model.config().num_hidden_layers));
  for (const CalibrationBatch& b : batches) {
    // Rows of the flattened [b * t, in] inputs that are real tokens.
    const at::Tensor valid = b.attention_mask.reshape({-1}).nonzero().squeeze(1);
    stats.tokens += valid.size(0);
    const LinearObserver observe = [&](int64_t layer, LinearSlot slot, const at::Tensor& x) {
      at::Tensor rows = x.reshape({-1, x.size(-1)}).index_select(0, valid).to(at::kFloat);
      at::Tensor m = rows.abs().amax(0).cpu();
      at::Tensor& acc = stats.absmax[static_cast<size_t>(layer)][static_cast<size_t>(slot)];
      acc = acc.defined() ? at::maximum(acc, m) : m;
    };
    at::Tensor h = model.embed(b.input_ids);
    const at::Tensor mask = model.mask_bias(b.attention_mask);
    for (int64_t i = 0; i < model.config().num_hidden_layers; ++i) h = model.layer_forward(i, h, mask, &observe);
  }
  return stats;
}

}  // namespace embeval
