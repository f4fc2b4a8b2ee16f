#pragma once
// `embeval quantize`: load a checkpoint folder, quantize it with the method
// options.quant names (calibrated on options.calib_texts), and save the
// result as a checkpoint folder in the method's layout
// (runners/quant/quantized_checkpoint.h) that loads like any other.
#include <filesystem>
#include <memory>
#include <string>

#include "harness/encoder.h"
#include "runners/bert/runner_options.h"

namespace embeval {

struct CheckpointQuantization {
  std::unique_ptr<Encoder> encoder;  // the quantized model as it ran in memory
  std::string description;           // what quantizing did (kernel, layers, calibration)
  double seconds = 0;
  int64_t bytes_before = 0, bytes_after = 0;  // Linear weight bytes
};

// `dir`: the checkpoint folder (a plain folder or hf:DIR); `out` must not
// exist. `tool` is recorded in embeval_quantization.json.
CheckpointQuantization quantize_checkpoint(const std::string& dir, const RunnerOptions& options,
                                           const std::filesystem::path& out, const std::string& tool);

}  // namespace embeval
