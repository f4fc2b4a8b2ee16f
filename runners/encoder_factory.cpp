#include "runners/encoder_factory.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/error.h"
#include "runners/char_ngram_encoder.h"
#include "runners/precomputed_encoder.h"

namespace embeval {
namespace {

const char* const BASELINES[] = {"char-ngram"};

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const std::string& token, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;  // suggest only near misses
  for (const auto& k : known) {
    size_t d = edit_distance(token, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? "" : fmt::format("; did you mean {}?", best);
}

std::unique_ptr<Encoder> parse_precomputed(const std::string& spec, const std::string& arg) {
  if (arg.empty()) fail("could not parse model spec \"{}\": precomputed needs a file, e.g. precomputed:vecs.jsonl", spec);
  return std::make_unique<PrecomputedEncoder>(arg);
}

std::unique_ptr<Encoder> parse_baseline(const std::string& spec, const std::string& arg) {
  if (arg == "char-ngram") return std::make_unique<CharNgramEncoder>();
  std::vector<std::string> known(std::begin(BASELINES), std::end(BASELINES));
  fail("could not parse model spec \"{}\": unknown baseline \"{}\"{}; known baselines: {}", spec, arg,
       suggestion(arg, known), fmt::join(known, ", "));
}

}  // namespace

std::vector<std::string> encoder_spec_forms() {
  return {"precomputed:FILE (JSONL lines {\"text\", \"embedding\"})",
          "baseline:char-ngram (hashed character 1-3-gram TF-IDF, no weights)"};
}

std::unique_ptr<Encoder> make_encoder(const std::string& spec) {
  auto colon = spec.find(':');
  std::string backend = colon == std::string::npos ? spec : spec.substr(0, colon);
  std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (backend == "precomputed") return parse_precomputed(spec, arg);
  if (backend == "baseline") return parse_baseline(spec, arg);
  fail("could not parse model spec \"{}\": unknown backend \"{}\"{}; known forms: {}", spec, backend,
       suggestion(backend, {"precomputed", "baseline"}), fmt::join(encoder_spec_forms(), "; "));
}

}  // namespace embeval
