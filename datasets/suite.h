#pragma once
// A suite is a named list of task folders, written as a file
// (datasets/suites/<name>.json: {"name", "description", "tasks": [paths]}).
// Task paths are relative to the data root (the folder holding suites/).
#include <filesystem>
#include <string>
#include <vector>

namespace embeval::data {

struct Suite {
  std::string name, description;
  std::vector<std::filesystem::path> task_dirs;
};

Suite read_suite(const std::filesystem::path& file, const std::filesystem::path& data_root);
// Suite names available under <data_root>/suites, sorted.
std::vector<std::string> list_suites(const std::filesystem::path& data_root);
// Finds <data_root>/suites/<name>.json; an unknown name lists the known ones.
Suite find_suite(const std::string& name, const std::filesystem::path& data_root);

}  // namespace embeval::data
