#pragma once
// Shared plumbing of the embeval subcommands: locating the bundled data,
// resolving --suite / --task-dir into task folders, and describing the run.
#include <filesystem>
#include <string>
#include <vector>

#include "harness/result_store.h"

namespace embeval::cli {

// Where bundled data lives: --data-dir, else $EMBEVAL_DATA_DIR, else
// <executable>/../datasets, else the source tree the binary was built from.
std::filesystem::path data_root(const std::string& flag_value);

// Task folders from suites and/or explicit folders; duplicates dropped.
std::vector<std::filesystem::path> resolve_tasks(const std::vector<std::string>& suites,
                                                 const std::vector<std::string>& task_dirs,
                                                 const std::filesystem::path& data_root);

RunRecord describe_run(int argc, char** argv);

}  // namespace embeval::cli
