#pragma once
// Statistics of the activations each Linear sees while the model encodes the
// calibration texts (padding positions excluded).
#include <array>
#include <vector>

#include <ATen/core/Tensor.h>

#include "runners/bert/bert_model.h"

namespace embeval {

// absmax[layer][slot]: float32 [in], the largest |x| of each input channel
// (SmoothQuant's act_scales, calibration.py get_act_scales).
struct ActivationAbsMax {
  std::vector<std::array<at::Tensor, 4>> absmax;
  int64_t tokens = 0;  // calibration tokens seen (padding excluded)
  const at::Tensor& of(int64_t layer, LinearSlot slot) const {
    return absmax[static_cast<size_t>(layer)][static_cast<size_t>(slot)];
  }
};

ActivationAbsMax collect_activation_absmax(const BertModel& model, const std::vector<CalibrationBatch>& batches);

}  // namespace embeval
