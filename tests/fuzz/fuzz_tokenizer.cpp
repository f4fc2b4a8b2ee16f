// Arbitrary bytes (invalid UTF-8, controls, specials written literally, very
// long words) through the bert-base-chinese WordPiece tokenizer, both of
// transformers' flavours. Whatever the text, the ids must be in the
// vocabulary, framed by [CLS] ... [SEP] and within max_length.
#include <memory>

#include "runners/tokenizers/tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

using namespace embeval;

namespace {

std::unique_ptr<Tokenizer> make(TokenizerFlavor flavor) {
  const auto dir = fuzz::scratch("wordpiece/vocab.txt").parent_path();
  std::filesystem::copy_file(EMBEVAL_SOURCE_DIR "/tests/data/tokenizer/bert-base-chinese-vocab.txt", dir / "vocab.txt",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json") << R"({"do_lower_case": true, "tokenize_chinese_chars": true})";
  return load_tokenizer(dir, flavor);
}

void check(const Tokenizer& tok, const std::string& text) {
  constexpr int64_t MAX_LENGTH = 48;
  const std::vector<int32_t> ids = tok.encode(text, MAX_LENGTH);
  EMBEVAL_ASSERT(ids.size() >= 2 && static_cast<int64_t>(ids.size()) <= MAX_LENGTH);
  EMBEVAL_ASSERT(ids.front() == 101 && ids.back() == 102);  // [CLS], [SEP] in this vocabulary
  for (int32_t id : ids) EMBEVAL_ASSERT(id >= 0 && id < tok.vocab_size());
  const std::vector<int32_t> plain = tok.encode_plain(text);
  for (int32_t id : plain) EMBEVAL_ASSERT(id >= 0 && id < tok.vocab_size());
  // Truncation keeps a prefix of the plain ids.
  for (size_t i = 1; i + 1 < ids.size(); ++i) EMBEVAL_ASSERT(i - 1 < plain.size() && ids[i] == plain[i - 1]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<Tokenizer> slow = make(TOKENIZER_SLOW), fast = make(TOKENIZER_FAST);
  const std::string text(reinterpret_cast<const char*>(data), size);
  check(*slow, text);
  check(*fast, text);
  return 0;
}
