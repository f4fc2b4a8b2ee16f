#pragma once
// Tokenizers of Hugging Face checkpoints, reproducing transformers' ids
// exactly: WordPiece (BertTokenizer / BertTokenizerFast) and SentencePiece
// (XLM-R). encode() returns ids with the special tokens the model expects
// ([CLS] ... [SEP], <s> ... </s>), truncated so that the result, specials
// included, has at most max_length ids.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace embeval {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(const std::string& text, int64_t max_length) const = 0;
  // Ids of the text alone, without special tokens or truncation (for prompt
  // lengths when a pooling layer excludes the prompt).
  virtual std::vector<int32_t> encode_plain(const std::string& text) const = 0;
  virtual int32_t pad_id() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::string describe() const = 0;  // "wordpiece (vocab.txt, 21128 tokens, lower_case)"
};

// Loads the tokenizer of a checkpoint folder: tokenizer.json when present,
// else vocab.txt (WordPiece) or sentencepiece.bpe.model (XLM-R), with the
// options of tokenizer_config.json. Errors name the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir);

}  // namespace embeval
