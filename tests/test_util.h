#pragma once
// Paths and small helpers shared by the tests.
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "datasets/scoring_protocol.h"

namespace embeval::test {

std::filesystem::path source_dir();
// A bundled task folder, e.g. task_dir("LCQMC/mini").
std::filesystem::path task_dir(const std::string& relative);
// tests/data/<relative>
std::filesystem::path data_path(const std::string& relative);
nlohmann::json read_json(const std::filesystem::path& file);
// Removes a file or folder tree; no error if it does not exist.
void remove_tree(const std::filesystem::path& p);
// A fresh empty directory under the build tree (per process), removed and re-created.
std::filesystem::path scratch_dir(const std::string& name);
void write_file(const std::filesystem::path& file, const std::string& text);
// bf16 bits as the float they are (the float's upper half).
inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = uint32_t{b} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace embeval::test

namespace embeval::test {
// Runs the registered task type named in <task_dir>/task.json on the task,
// with precomputed vectors from `vectors_jsonl`; returns the metrics object.
// `protocol`, when given, replaces the task.json's scoring protocol.
nlohmann::ordered_json evaluate_with_vectors(const std::filesystem::path& task_dir,
                                             const std::filesystem::path& vectors_jsonl,
                                             std::optional<data::ScoringProtocol> protocol = std::nullopt);
// tests/data/mteb_reference/<name>/: MTEB's scores and the task folder they
// were computed on (mapped from ../shared/datasets to the bundled copy).
struct MtebReference {
  std::filesystem::path task_dir, vectors;
  nlohmann::json scores;  // as MTEB wrote them
  nlohmann::json file;    // the whole mteb_scores.json
};
MtebReference mteb_reference(const std::string& name);
}  // namespace embeval::test

namespace embeval::test {
// The message of the exception of type E that f() throws, or "(no error)".
template <class E, class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace embeval::test
