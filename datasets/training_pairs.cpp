#include "datasets/training_pairs.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "datasets/data_error.h"
#include "datasets/jsonl_reader.h"

namespace embeval::data {
namespace fs = std::filesystem;

const std::vector<std::string>& training_kinds() {
  static const std::vector<std::string> kinds = {"paraphrase", "nli", "qa", "title-content"};
  return kinds;
}

namespace {

void read_file(const fs::path& file, std::vector<TrainingPair>& out) {
  JsonlReader reader(file);
  nlohmann::json row;
  while (reader.next(row)) {
    TrainingPair p;
    p.query = reader.get_string(row, "query");
    p.positive = reader.get_string(row, "positive");
    p.kind = reader.get_string(row, "kind");
    if (reader.has(row, "negatives")) p.negatives = reader.get_string_list(row, "negatives");
    if (p.query.empty() || p.positive.empty()) reader.fail("query and positive must not be empty");
    const auto& kinds = training_kinds();
    if (std::find(kinds.begin(), kinds.end(), p.kind) == kinds.end())
      reader.fail("kind \"" + p.kind + "\" is not one of paraphrase, nli, qa, title-content");
    p.negatives.erase(std::remove(p.negatives.begin(), p.negatives.end(), std::string()), p.negatives.end());
    out.push_back(std::move(p));
  }
}

}  // namespace

std::vector<TrainingPair> read_training_pairs(const fs::path& path) {
  std::vector<TrainingPair> out;
  if (fs::is_directory(path)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && e.path().extension() == ".jsonl") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw DataError(path.string() + ": no .jsonl files");
    for (const fs::path& f : files) read_file(f, out);
  } else {
    read_file(path, out);
  }
  return out;
}

}  // namespace embeval::data
