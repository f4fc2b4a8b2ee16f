#include "datasets/suite.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "datasets/data_error.h"
#include "datasets/jsonl_reader.h"

namespace embeval::data {
namespace fs = std::filesystem;

Suite read_suite(const fs::path& file, const fs::path& data_root) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: suite file not found", file.string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: malformed JSON: {}", file.string(), json_error_text(e)));
  }
  if (!j.is_object() || !j.contains("tasks") || !j["tasks"].is_array())
    throw DataError(fmt::format("{}: expected an object with a \"tasks\" array", file.string()));
  Suite s;
  s.name = j.value("name", file.stem().string());
  s.description = j.value("description", "");
  for (const auto& t : j["tasks"]) {
    if (!t.is_string()) throw DataError(fmt::format("{}: every entry of \"tasks\" must be a path string", file.string()));
    s.task_dirs.push_back(data_root / t.get<std::string>());
  }
  if (s.task_dirs.empty()) throw DataError(fmt::format("{}: suite lists no tasks", file.string()));
  return s;
}

std::vector<std::string> list_suites(const fs::path& data_root) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_root / "suites", ec))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

Suite find_suite(const std::string& name, const fs::path& data_root) {
  fs::path file = data_root / "suites" / (name + ".json");
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw DataError(fmt::format("unknown suite \"{}\"; known suites: {}", name, fmt::join(list_suites(data_root), ", ")));
  return read_suite(file, data_root);
}

}  // namespace embeval::data
