// A checkpoint whose only tokenizer file is tokenizer.json: the WordPiece
// reader (vocab, normalizer and pre-tokenizer options, added tokens) and, for
// a Unigram model, the conversion back to a SentencePiece model
// (runners/tokenizers/sentencepiece_json.h). A tokenizer that loads must then encode.
#include "runners/tokenizers/sentencepiece_json.h"
#include "runners/tokenizers/tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

using namespace embeval;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::scratch("tokenizer_json/tokenizer.json");
  fuzz::write_bytes(file, data, size);
  fuzz::expect_clean([&] {
    std::unique_ptr<Tokenizer> tok = load_tokenizer(file.parent_path());
    for (const char* text : {"Hello, world! 你好", "[CLS] <mask> ünïcödé 123"}) {
      fuzz::expect_clean([&] {
        const std::vector<int32_t> ids = tok->encode(text, 32);
        EMBEVAL_ASSERT(ids.size() <= 32);
        for (int32_t id : ids) EMBEVAL_ASSERT(id >= 0 && id < tok->vocab_size());
      });
    }
  });
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) fuzz::expect_clean([&] { (void)sentencepiece_model_from_tokenizer_json(j, file); });
  return 0;
}
