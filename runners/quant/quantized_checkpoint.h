#pragma once
// Quantized checkpoints on disk: what `embeval quantize` writes and what
// loading a checkpoint folder reads (runners/quant/FORMATS.md has the
// layouts).
//
//  - GPTQ and the round-to-nearest weight-only methods: AutoGPTQ's tensors
//    (qweight, qzeros, scales, g_idx), quantize_config.json and config.json's
//    quantization_config {"quant_method": "gptq", ...} (transformers /
//    optimum read it there); "checkpoint_format" "gptq" (v1, zeros stored
//    minus one) unless a zero is 0, which only "gptq_v2" can hold.
//  - AWQ: AutoAWQ's GEMM tensors and quantization_config {"quant_method":
//    "awq", "version": "gemm", ...}.
//  - W8A8 / SmoothQuant: embeval's own layout, named as compressed-tensors
//    does: <layer>.weight int8 [out, in], <layer>.weight_scale float32
//    [out, 1]; quantization_config {"quant_method": "embeval-w8a8"}.
//  - AWQ and SmoothQuant scales that could not be folded into the layer
//    before: <layer>.input_divisor float32 [in] (the layer computes
//    (x / d) W^T + b). AutoAWQ has no such tensor for LayerNorm-fed layers
//    (a pre-LN decoder folds them into its norm); its nearest is the
//    ScaledActivation "scales" of a GELU.
//  - Everything else (embeddings, LayerNorms, biases, the sentence-
//    transformers modules, tokenizer files) is copied as it was; biases are
//    stored in float32 (AWQ rescales V's).
//  - embeval_quantization.json: the method name, calibration and time.
//
// Loading reads the layouts of those tools too (a GPTQ checkpoint with
// act-order g_idx, gptq v1 or v2, AutoAWQ GEMM), checks every tensor
// against bits and group size, and refuses what it does not read (another
// quant_method, AWQ's GEMV / Marlin versions, bit widths its kernels lack)
// with one line naming the file and tensor.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/quant/quant_spec.h"
#include "runners/quant/quantized_weight.h"

namespace embeval {

struct QuantizationProvenance {
  std::string calibration;  // "512 texts drawn from 3 task folder(s), seed 0", or ""
  double seconds = 0;       // quantization time
  std::string tool;         // "embeval 0.1.0 (git abc1234)"
};

// Writes `out` (which must not exist; built in a temporary folder beside it
// and renamed into place at the end): a copy of the checkpoint folder
// `source` whose transformer weights (the files `weights` was read from,
// in `source` or a subfolder) are replaced by model.safetensors with the
// `linears` in their method's layout and every other tensor of `weights`.
void save_quantized_checkpoint(const std::filesystem::path& source, const std::filesystem::path& out,
                               const StateDict& weights, const std::vector<QuantizedLinear>& linears,
                               const QuantSpec& spec, const QuantizationProvenance& provenance);

struct LoadedQuantization {
  std::string method;  // canonical method name, e.g. "gptq-int4-g128-actorder"
  std::string layout;  // e.g. "AutoGPTQ gptq_v2, quantize_config.json"
  std::map<std::string, QuantizedLinear> linears;  // by layer name
};

// For the transformer folder `dir` whose tensors are `weights`: nullopt when
// it holds no quantized layers. Otherwise unpacks every quantized layer,
// puts its dequantized float32 weight into `weights` as <layer>.weight (so
// the model can be built as usual before its kernels are swapped), and
// returns them. UserError naming the file and tensor on anything
// inconsistent.
std::optional<LoadedQuantization> read_quantized_checkpoint(const std::filesystem::path& dir, StateDict& weights);

// The file that says the transformer folder `dir` is quantized (config.json
// with a quantization_config, quantize_config.json or quant_config.json);
// nullopt when none does. Reads only the JSON: the CLI checks it before a
// run starts. UserError when the files disagree (as above).
std::optional<std::filesystem::path> quantization_config_file(const std::filesystem::path& dir);

// Swaps the model's Linear kernels for the loaded quantized ones (Q, K and V
// must be quantized alike: they run as one fused Linear). The model must
// compute in fp32 on the CPU. Returns a description for the run record.
std::string install_quantized_checkpoint(BertModel& model, const StateDict& weights, const LoadedQuantization& q,
                                         const std::string& where);

}  // namespace embeval
