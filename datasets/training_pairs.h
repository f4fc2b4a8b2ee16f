#pragma once
// Contrastive training pairs as JSON Lines (the layout of ../shared/train,
// see its README): one object a line,
//   {"query": "...", "positive": "...", "negatives": ["...", ...], "kind": "paraphrase|nli|qa|title-content"}
// negatives optional (may be empty). Errors name the file and line.
#include <filesystem>
#include <string>
#include <vector>

namespace embeval::data {

struct TrainingPair {
  std::string query, positive;
  std::vector<std::string> negatives;  // hard negatives the source labelled
  std::string kind;
};

// Reads one .jsonl file, or every *.jsonl of a folder in name order. Empty
// query or positive, or an unknown kind, is an error naming file:line.
std::vector<TrainingPair> read_training_pairs(const std::filesystem::path& path);

// The kinds a file may name, in the order the trainer balances them.
const std::vector<std::string>& training_kinds();

}  // namespace embeval::data
