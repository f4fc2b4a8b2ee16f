#pragma once
// An embedding cache on disk (`embeval run --cache DIR`): vectors keyed by
// the model fingerprint, the role and prompt the texts were encoded with, and
// the SHA-256 of each text. Rerunning a suite with another scoring protocol,
// or a second suite that shares corpora, reads them instead of encoding
// again. A fingerprint changes whenever the vectors could (weights, dtype,
// quantization, overrides), so a changed model never meets old vectors.
//
// Layout: DIR/<sha256(fingerprint, role, prompt)>/<sha256 of file>.vec, one
// file per encode call that computed something new, written to a temporary
// name and renamed (a killed run leaves no half file behind). Each file
// holds its fingerprint, role, prompt and dimension and ends with the SHA-256
// of everything before it: a file that fails any check is an error naming
// it, never used.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "harness/matrix.h"

namespace embeval {

class EmbeddingCache {
 public:
  explicit EmbeddingCache(std::filesystem::path dir);

  // Copies the cached vectors of `texts` into the rows of `out` (texts.size()
  // x dim) and returns which were found.
  std::vector<bool> lookup(const std::string& fingerprint, const std::string& role, const std::string& prompt,
                           int64_t dim, const std::vector<std::string>& texts, Matrix& out);
  // Adds vectors (rows of `vectors`, one per text) as one new file.
  void store(const std::string& fingerprint, const std::string& role, const std::string& prompt,
             const std::vector<std::string>& texts, const Matrix& vectors);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct Slot {
    int64_t dim = 0;
    std::unordered_map<std::string, std::vector<float>> vectors;  // text SHA-256 (hex) -> vector
  };
  Slot& slot(const std::string& fingerprint, const std::string& role, const std::string& prompt, int64_t dim);
  void load_file(const std::filesystem::path& file, const std::string& fingerprint, const std::string& role,
                 const std::string& prompt, Slot& slot);

  std::filesystem::path dir_;
  std::map<std::string, Slot> slots_;  // by folder name
};

}  // namespace embeval
