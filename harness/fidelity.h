#pragma once
// Fidelity of a quantized variant: the cosine of each embedding it produces
// to the fp32 model's embedding of the same text, encoded the same way.
//
// The fp32 run of a task keeps every set of vectors it encoded (one per
// EvalContext::encode call: the distinct texts, with the digest of those
// texts and their prompt) in a file; the variant's run of the task compares
// its own sets with them, set by set, after its timings are taken, so the
// comparison costs neither time nor memory in the figures recorded.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/encoder.h"
#include "harness/matrix.h"

namespace embeval {

struct EncodedSet {
  Role role = ROLE_PASSAGE;
  std::string digest;  // SHA-256 of the prompt and the texts, in order
  Matrix vectors;      // one row per distinct text
};

// The digest of what one encode call received.
std::string encoded_set_digest(const std::string& prompt, const std::vector<std::string>& texts);

// A small binary file (magic "EMBEVALV", version 1, then the sets); errors
// name the file.
void save_encoded_sets(const std::filesystem::path& file, const std::vector<EncodedSet>& sets);
std::vector<EncodedSet> load_encoded_sets(const std::filesystem::path& file);

struct Fidelity {
  double mean_cosine = 0, min_cosine = 1;
  int64_t vectors = 0;
};
// Row-by-row cosines of two matrices of the same shape (a zero row against
// a zero row counts as 1, against anything else as 0).
Fidelity compare_rows(const Matrix& reference, const Matrix& variant);

// Row-by-row cosines of `variant` against `reference`; nullopt when the two
// did not encode the same texts in the same order (another task version,
// other prompts): no number is better than a wrong one.
std::optional<Fidelity> compare_encoded_sets(const std::vector<EncodedSet>& reference,
                                             const std::vector<EncodedSet>& variant);

}  // namespace embeval
