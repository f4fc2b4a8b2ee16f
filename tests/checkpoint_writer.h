#pragma once
// Small random Hugging Face + sentence-transformers checkpoints written from
// C++ for the encoder tests and benchmarks: config.json, the weights
// (safetensors, sharded safetensors or a torch.save zip), vocab.txt,
// sentence_bert_config.json, modules.json, 1_Pooling/, optional 2_Dense/
// and Normalize. Weights are drawn from a seeded generator, biases and
// LayerNorm parameters included, so a forward pass that drops one differs.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runners/checkpoint/safetensors_reader.h"
#include "runners/tokenizers/tokenizer.h"

namespace embeval::test {

struct TinyCheckpoint {
  std::string model_type = "bert";  // or "xlm-roberta"
  int64_t vocab_size = 120, hidden_size = 32, num_layers = 2, num_heads = 4, intermediate_size = 64;
  int64_t max_position_embeddings = 64, type_vocab_size = 2, pad_token_id = 0;
  std::string hidden_act = "gelu";
  std::vector<std::string> pooling = {"mean"};  // cls, max, mean, mean_sqrt_len, weighted_mean, last_token
  bool include_prompt = true;
  int64_t dense_out = 0;  // 0: no Dense module
  std::string dense_activation = "torch.nn.modules.linear.Identity";
  bool normalize = false;
  bool modules_json = true;
  int64_t max_seq_length = 0;          // 0: no sentence_bert_config.json
  std::string prefix;                  // weight name prefix, e.g. "bert."
  std::string format = "safetensors";  // "safetensors", "sharded" (2 shards), "bin" (torch.save zip)
  TensorDtype dtype = TENSOR_DTYPE_F32;
  bool extra_heads = true;  // add pooler and MLM tensors the loader must ignore
  uint32_t seed = 1;
  std::string similarity_fn_name;  // config_sentence_transformers.json when non-empty
  std::string prompts_json;        // its "prompts" object, e.g. {"query": "q: "}
  std::string default_prompt_name;  // its "default_prompt_name" ("" writes null)
};

void write_checkpoint(const std::filesystem::path& dir, const TinyCheckpoint& c);

// A tokenizer for random checkpoints that needs no vocabulary file: each
// code point (whitespace skipped) is one id, 5 + code point mod (vocab - 5);
// [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 as in the vocab.txt written above.
// XLM-R layout when xlmr: <s>=0 <pad>=1 </s>=2 <unk>=3.
std::unique_ptr<Tokenizer> make_char_tokenizer(int64_t vocab_size, bool xlmr = false);

}  // namespace embeval::test
