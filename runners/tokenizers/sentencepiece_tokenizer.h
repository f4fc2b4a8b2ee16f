#pragma once
// XLM-R's tokenizer as Hugging Face's XLMRobertaTokenizer computes it: a
// SentencePiece model (sentencepiece.bpe.model, or the one a Unigram
// tokenizer.json was converted from; run by Debian's
// libsentencepiece through runners/tokenizers/spm_shim.h) under fairseq's
// id layout:
//   <s> = 0, <pad> = 1, </s> = 2, <unk> = 3, SentencePiece piece p -> p + 1
//   (p = 0, SentencePiece's own <unk>, -> 3), <mask> = pieces + 1;
// a text becomes <s> ... </s>. Added tokens written in the text (<mask>,
// <s>, ...) are cut out first and each remaining stretch is encoded by
// SentencePiece on its own, as transformers does.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runners/tokenizers/added_tokens.h"
#include "runners/tokenizers/tokenizer.h"

struct embeval_spm;

namespace embeval {

struct SentencePieceOptions {
  // From the configuration; the fairseq specials it lacks are added (<mask>
  // eating the whitespace on its left).
  std::vector<AddedToken> added_tokens;
  SentencePreprocess preprocess;
};

class SentencePieceTokenizer : public Tokenizer {
 public:
  static constexpr int32_t BOS_ID = 0, PAD_ID = 1, EOS_ID = 2, UNK_ID = 3, FAIRSEQ_OFFSET = 1;

  // Throws UserError naming the file when it is not a SentencePiece model,
  // or when the SentencePiece module cannot be opened.
  SentencePieceTokenizer(const std::filesystem::path& model_file, SentencePieceOptions options);
  // From a serialized ModelProto (runners/tokenizers/sentencepiece_json.h); `source`
  // names the file it came from in messages.
  SentencePieceTokenizer(const std::filesystem::path& source, const std::string& serialized_model,
                         SentencePieceOptions options);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int32_t> encode(const std::string& text, int64_t max_length) const override;
  std::vector<int32_t> encode_plain(const std::string& text) const override;
  int32_t pad_id() const override { return PAD_ID; }
  int64_t vocab_size() const override { return vocab_size_; }
  std::string describe() const override;
  int32_t mask_id() const { return mask_id_; }
  int piece_size() const { return pieces_; }
  // SentencePiece's own ids for a text, without any mapping (for tests).
  std::vector<int32_t> sentencepiece_ids(const std::string& text) const;

  // SentencePieceTrainer::Train("--input=... --model_prefix=... ...").
  static void train(const std::string& args);
  // Whether the SentencePiece module can be opened (the build found
  // libsentencepiece-dev and the module is where it is looked for).
  static bool available();

 private:
  void init();  // sizes and the fairseq specials, once the model is loaded
  void encode_into(std::string_view text, bool via_piece_strings, std::vector<int32_t>& ids) const;

  embeval_spm* model_ = nullptr;
  std::filesystem::path file_;
  SentencePieceOptions options_;
  int pieces_ = 0;
  int32_t mask_id_ = 0;
  int64_t vocab_size_ = 0;
};

}  // namespace embeval
