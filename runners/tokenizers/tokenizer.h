#pragma once
// Tokenizers of Hugging Face checkpoints, reproducing transformers' ids
// exactly: WordPiece (BertTokenizer / BertTokenizerFast) and SentencePiece
// (XLM-R). encode() returns ids with the special tokens the model expects
// ([CLS] ... [SEP], <s> ... </s>), truncated so that the result, specials
// included, has at most max_length ids. Both encode() and encode_plain()
// first prepare the text as sentence-transformers does (str.strip(), and
// str.lower() when sentence_bert_config.json says do_lower_case), so a
// caller passes texts as the user gave them.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace embeval {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Throws UserError when max_length cannot hold the special tokens.
  virtual std::vector<int32_t> encode(const std::string& text, int64_t max_length) const = 0;
  // Ids of the text alone, without special tokens or truncation (for prompt
  // lengths when a pooling layer excludes the prompt).
  virtual std::vector<int32_t> encode_plain(const std::string& text) const = 0;
  virtual int32_t pad_id() const = 0;
  // The number of ids (largest id + 1, added tokens included).
  virtual int64_t vocab_size() const = 0;
  virtual std::string describe() const = 0;  // "wordpiece (vocab.txt, 21128 tokens, lower_case)"
};

// Which of transformers' two implementations a WordPiece tokenizer follows
// where they disagree (rare characters only: see wordpiece_tokenizer.h).
// AUTO: BertTokenizerFast for tokenizer.json, BertTokenizer for vocab.txt.
enum TokenizerFlavor { TOKENIZER_AUTO, TOKENIZER_SLOW, TOKENIZER_FAST };

// Loads the tokenizer of a checkpoint folder: tokenizer.json when present
// (WordPiece; a Unigram one defers to sentencepiece.bpe.model next to it),
// else vocab.txt (WordPiece) or sentencepiece.bpe.model (XLM-R), with the
// options of tokenizer_config.json, special_tokens_map.json and
// sentence_bert_config.json. Errors name the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir,
                                          TokenizerFlavor flavor = TOKENIZER_AUTO);

// The sequence length sentence-transformers truncates to: max_seq_length of
// sentence_bert_config.json, else min(config.json max_position_embeddings,
// tokenizer_config.json model_max_length). Throws UserError when none is known.
int64_t default_max_length(const std::filesystem::path& model_dir);

}  // namespace embeval
