#pragma once
// The weights of a Hugging Face checkpoint folder as named CPU tensors in
// their stored dtype: model.safetensors, a sharded
// model.safetensors.index.json, or pytorch_model.bin (torch.save's zip
// format, runners/checkpoint/torch_zip_reader.h; also sharded via its .index.json).
// The first of those present wins, in that order, as transformers does.
// Quantized checkpoints AutoGPTQ saved under its own base name are found
// through quantize_config.json's model_file_base_name, else the one
// gptq_model-*.safetensors file (AutoGPTQ's default name).
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace embeval {

struct StateDict {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::filesystem::path> origin;  // tensor -> file it came from, for errors
  std::vector<std::filesystem::path> files;             // weight files read, in order
  std::string format;                                   // "safetensors", "safetensors, 2 shards", "pytorch_model.bin"
  // Tensors not loaded, with their stored dtype: integer / bool buffers
  // (position_ids) and float types embeval does not read (F64). Unused ones
  // (a pooler head in F64) are harmless; a required one is an error naming
  // its dtype rather than "missing" (required_tensor below).
  std::map<std::string, std::string> skipped;
  // The integer tensors among them, loaded all the same: quantized
  // checkpoints keep their packed weights in I32 / I8 / U8 (qweight, qzeros,
  // g_idx), which the quantization reader takes from here.
  std::map<std::string, at::Tensor> integers;
};

// The tensor `name` (or `alt`, an older spelling, when not empty); a UserError
// naming `where` (the checkpoint) and the tensor when it is absent or was
// skipped for its dtype.
const at::Tensor& required_tensor(const StateDict& weights, const std::string& name, const std::string& where,
                                  const std::string& alt = "");

// A UserError naming the file and tensor when `t` holds a NaN or an
// infinity. A damaged checkpoint is refused at load rather than trusted to
// give non-finite vectors: not every kernel step carries NaN through (a
// clamp in the fp32 softmax once turned a NaN query into finite, uniform
// attention), and finite, wrong vectors would be scored.
void require_finite(const at::Tensor& t, const std::string& file, const std::string& name);

// Weight files of the folder without reading them (for fingerprints); empty when none.
std::vector<std::filesystem::path> checkpoint_weight_files(const std::filesystem::path& dir);
// Loads every tensor; no weight file is a UserError listing the names looked for.
StateDict load_state_dict(const std::filesystem::path& dir);
// One file: .safetensors or a torch.save zip (.bin / .pt).
void load_weight_file(const std::filesystem::path& file, StateDict* out);

}  // namespace embeval
