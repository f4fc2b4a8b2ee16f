// A small sentence-transformers checkpoint with one of its JSON or vocabulary
// files replaced by the input (the first byte picks which): config.json's
// sizes, heads and activation, modules.json, pooling, Dense, prompts,
// tokenizer options, vocab.txt. The model must then load and encode, or stop
// with a one-line error.

#include "runners/encoder_factory.h"
#include "tests/checkpoint_writer.h"
#include "tests/fuzz/fuzz_input.h"

using namespace embeval;

namespace {

const char* const FILES[] = {"config.json",
                             "modules.json",
                             "1_Pooling/config.json",
                             "2_Dense/config.json",
                             "sentence_bert_config.json",
                             "config_sentence_transformers.json",
                             "tokenizer_config.json",
                             "special_tokens_map.json",
                             "vocab.txt"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = [] {
    const auto d = fuzz::scratch("model/config.json").parent_path();
    test::TinyCheckpoint c;
    c.vocab_size = 40, c.hidden_size = 8, c.num_layers = 1, c.num_heads = 2, c.intermediate_size = 16;
    c.max_position_embeddings = 16, c.dense_out = 4, c.normalize = true, c.max_seq_length = 12;
    c.prompts_json = R"({"query": "q: "})";
    test::write_checkpoint(d, c);
    return d;
  }();
  if (size == 0) return 0;
  const fuzz::SavedFile saved(dir / FILES[data[0] % std::size(FILES)]);
  fuzz::write_bytes(saved.file, data + 1, size - 1);
  fuzz::expect_clean([&] {
    std::unique_ptr<Encoder> enc = make_encoder("hf:" + dir.string());
    EncodeOptions opt;
    opt.role = ROLE_QUERY, opt.prompt = "query: ";
    const Matrix m = enc->encode({"hello world", "", "q: 你好 [SEP]"}, opt);
    EMBEVAL_ASSERT(m.rows == 3 && m.cols == enc->info().dim && m.values.size() == size_t(m.rows * m.cols));
  });
  return 0;
}
