#pragma once
// How to run a model, as opposed to which model: device, dtype, batching,
// length and prompt overrides. Filled from CLI flags and/or spec tokens
// (runners/encoder_factory.h); empty / zero fields take the backend's default.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace embeval {

struct RunnerOptions {
  std::string device;            // "cpu", "cuda", "cuda:N"; default cpu
  std::string dtype;             // "fp32", "fp16", "bf16"; default fp32
  int64_t batch_size = 0;        // texts per forward pass; default 32
  int64_t max_batch_tokens = 0;  // padded tokens per forward pass; default 16384
  int64_t max_length = 0;        // truncation in tokens, specials included; default the model's
  // Texts tokenized per chunk, the next chunk on a second thread while the
  // current one runs; default 8192 on CUDA, everything at once on the CPU.
  int64_t tokenize_chunk = 0;
  // Replace the prompt for a role (the task's and the model's); "" means no prompt.
  std::optional<std::string> query_prompt, passage_prompt;
  // Quantization method, canonical name (runners/quant/quant_spec.h), or "".
  // fake_quant: its integers run dequantised through the fp32 kernels.
  std::string quant;
  bool fake_quant = false;
  // Calibration texts for the methods that need them (AWQ, GPTQ,
  // SmoothQuant), and where they came from (recorded with the run).
  std::vector<std::string> calib_texts;
  std::string calib_source;
};

}  // namespace embeval
