#pragma once
// Calibration texts for quantization, drawn from task folders: every
// distinct text the tasks would encode (sentences, corpus documents,
// queries, training texts of classification), pooled in task order, then a
// deterministic sample of `count` of them (Fisher-Yates over a 64-bit
// Mersenne Twister with `seed`, written out here rather than std::shuffle,
// whose algorithm differs between standard libraries).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace embeval::data {

std::vector<std::string> calibration_texts(const std::vector<std::filesystem::path>& task_dirs, int64_t count,
                                           uint64_t seed);

// The same draw from a list of texts (embed's input): its distinct non-empty
// texts in first-seen order, then `count` of them sampled with `seed`.
std::vector<std::string> sample_texts(const std::vector<std::string>& texts, int64_t count, uint64_t seed);

// Texts of a JSONL file of {"text": ...} lines (--calib FILE); errors name the line.
std::vector<std::string> read_text_lines(const std::filesystem::path& file);

}  // namespace embeval::data
