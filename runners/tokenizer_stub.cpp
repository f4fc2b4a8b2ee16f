// TEMPORARY: stands in for load_tokenizer() until the tokenizer branch is
// merged (it defines the real one in runners/tokenizer.cpp); delete on merge.
#include "harness/error.h"
#include "runners/tokenizer.h"

namespace embeval {

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir) {
  fail("{}: tokenizers are not built yet (waiting for the tokenizer branch)", model_dir.string());
}

}  // namespace embeval
