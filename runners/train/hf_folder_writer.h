#pragma once
// Writes a trained encoder as a Hugging Face + sentence-transformers folder
// that the normal loader (and transformers / sentence-transformers) reads:
// config.json (BertModel), model.safetensors (float32 or float16),
// vocab.txt, tokenizer_config.json, special_tokens_map.json, modules.json
// (Transformer -> mean Pooling -> Normalize), sentence_bert_config.json,
// 1_Pooling/config.json, config_sentence_transformers.json.
#include <filesystem>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "runners/train/trainable_bert.h"

namespace embeval {

// The tokenizer files alone (vocab.txt copied from `vocab`), so a folder can
// be tokenized with load_tokenizer() before it holds weights.
void write_tokenizer_files(const std::filesystem::path& dir, const std::filesystem::path& vocab, int64_t max_length);

// Everything else: config, weights (fp16 when `half`), sentence-transformers files.
void write_model_files(const std::filesystem::path& dir, const TrainableBertConfig& config,
                       const std::map<std::string, at::Tensor>& weights, bool half);

}  // namespace embeval
