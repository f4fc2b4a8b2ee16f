#include "datasets/calibration_texts.h"

#include <algorithm>
#include <random>
#include <unordered_set>

#include "datasets/data_error.h"
#include "datasets/jsonl_reader.h"
#include "datasets/task_data.h"
#include "datasets/task_spec.h"

namespace embeval::data {
namespace {

void add_all(const std::vector<std::string>& from, std::vector<std::string>& pool, std::unordered_set<std::string>& seen) {
  for (const auto& t : from)
    if (!t.empty() && seen.insert(t).second) pool.push_back(t);
}

// The first min(count, size) places of a partial Fisher-Yates shuffle.
std::vector<std::string> draw(std::vector<std::string> pool, int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const size_t n = std::min<size_t>(pool.size(), static_cast<size_t>(std::max<int64_t>(count, 0)));
  for (size_t i = 0; i < n; ++i) {
    const size_t j = i + static_cast<size_t>(rng() % (pool.size() - i));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(n);
  return pool;
}

}  // namespace

std::vector<std::string> calibration_texts(const std::vector<std::filesystem::path>& task_dirs, int64_t count,
                                           uint64_t seed) {
  std::vector<std::string> pool;
  std::unordered_set<std::string> seen;
  for (const auto& dir : task_dirs) {
    const TaskSpec spec = read_task_spec(dir);
    if (spec.type == "STS") {
      StsData d = load_sts(spec);
      add_all(d.sentence1, pool, seen), add_all(d.sentence2, pool, seen);
    } else if (spec.type == "PairClassification") {
      PairData d = load_pairs(spec);
      add_all(d.sentence1, pool, seen), add_all(d.sentence2, pool, seen);
    } else if (spec.type == "Classification") {
      ClassificationData d = load_classification(spec);
      add_all(d.train_text, pool, seen), add_all(d.test_text, pool, seen);
    } else if (spec.type == "Clustering") {
      for (const auto& s : load_clustering(spec)) add_all(s.sentences, pool, seen);
    } else if (spec.type == "Reranking") {
      for (const auto& s : load_reranking(spec)) {
        add_all({s.query}, pool, seen), add_all(s.positive, pool, seen), add_all(s.negative, pool, seen);
      }
    } else if (spec.type == "Retrieval") {
      RetrievalData d = load_retrieval(spec);
      add_all(d.query_texts, pool, seen), add_all(d.corpus_texts, pool, seen);
    }
  }
  return draw(std::move(pool), count, seed);
}

std::vector<std::string> sample_texts(const std::vector<std::string>& texts, int64_t count, uint64_t seed) {
  std::vector<std::string> pool;
  std::unordered_set<std::string> seen;
  add_all(texts, pool, seen);
  return draw(std::move(pool), count, seed);
}

std::vector<std::string> read_text_lines(const std::filesystem::path& file) {
  std::vector<std::string> out;
  JsonlReader reader(file);
  nlohmann::json row;
  while (reader.next(row)) out.push_back(reader.get_string(row, "text"));
  return out;
}

}  // namespace embeval::data
