#pragma once
// The sentence-transformers pipeline of a checkpoint folder, as plain data:
// modules.json lists Transformer -> Pooling -> [Dense ...] -> [Normalize];
// sentence_bert_config.json gives max_seq_length and do_lower_case;
// 1_Pooling/config.json the pooling modes; N_Dense/config.json each
// projection; config_sentence_transformers.json the prompts and the
// similarity function. Without modules.json the pipeline is what
// sentence-transformers builds then: Transformer + mean pooling, and a note
// says so. Reading it touches no weights (runners/bert/bert_encoder.cpp runs it).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "harness/encoder.h"

namespace embeval {

// In the order sentence-transformers concatenates them when several are on.
enum PoolingMode {
  POOLING_CLS,
  POOLING_MAX,
  POOLING_MEAN,
  POOLING_MEAN_SQRT_LEN,
  POOLING_WEIGHTED_MEAN,
  POOLING_LAST_TOKEN
};
const char* pooling_mode_name(PoolingMode m);  // "cls", "max", "mean", "mean_sqrt_len", "weighted_mean", "last_token"

struct PoolingConfig {
  std::vector<PoolingMode> modes;  // one or more, concatenated
  bool include_prompt = true;      // false: prompt tokens are left out of the pooling
  int64_t word_embedding_dimension = 0;
};

enum DenseActivation {
  DENSE_ACTIVATION_IDENTITY,
  DENSE_ACTIVATION_TANH,
  DENSE_ACTIVATION_RELU,
  DENSE_ACTIVATION_GELU,
  DENSE_ACTIVATION_SIGMOID
};

// A step after pooling, in modules.json order.
struct PostStep {
  enum Kind { POST_DENSE, POST_NORMALIZE } kind = POST_NORMALIZE;
  std::filesystem::path dir;  // Dense: the module folder holding config.json and the weights
  int64_t in_features = 0, out_features = 0;
  bool bias = true;
  DenseActivation activation = DENSE_ACTIVATION_TANH;
  std::string activation_name;  // as written, e.g. "torch.nn.modules.linear.Identity"
};

struct StPipeline {
  std::filesystem::path dir;              // the checkpoint folder
  std::filesystem::path transformer_dir;  // where config.json and the weights are (usually dir)
  bool has_modules_json = false;
  int64_t max_seq_length = 0;        // 0: not given (the encoder falls back to the tokenizer / positions)
  int64_t tokenizer_max_length = 0;  // tokenizer_config.json model_max_length; 0 when absent or unbounded
  bool do_lower_case = false;        // sentence-transformers lower-cases texts before tokenizing
  PoolingConfig pooling;
  std::vector<PostStep> post;
  std::map<std::string, std::string> prompts;  // config_sentence_transformers.json "prompts"
  std::string default_prompt_name;
  Similarity similarity = SIMILARITY_COSINE;
  std::string similarity_fn_name;  // as written; empty when unset (cosine)
  std::vector<std::string> notes;  // defaults taken, for `models inspect`

  bool normalizes() const;
  int64_t pooled_dim(int64_t hidden_size) const;  // after pooling, before Dense
};

// Reads the pipeline files; errors name the file and field.
StPipeline read_st_pipeline(const std::filesystem::path& dir);

}  // namespace embeval
