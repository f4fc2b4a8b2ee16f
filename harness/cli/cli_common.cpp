#include "harness/cli/cli_common.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "build_info.h"
#include "datasets/suite.h"
#include "harness/error.h"
#include "harness/system_info.h"
#include "runners/torch_runtime.h"

namespace embeval::cli {
namespace fs = std::filesystem;

namespace {

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

bool has_suites(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p / "suites", ec);
}

}  // namespace

fs::path data_root(const std::string& flag_value) {
  if (!flag_value.empty()) {
    if (!has_suites(flag_value)) fail("{}: not a data folder (no suites/ inside)", flag_value);
    return flag_value;
  }
  if (const char* env = std::getenv("EMBEVAL_DATA_DIR"); env && *env) {
    if (!has_suites(env)) fail("EMBEVAL_DATA_DIR={}: not a data folder (no suites/ inside)", env);
    return env;
  }
  fs::path exe = executable_dir();
  for (const fs::path& p : {exe / ".." / "datasets", exe / ".." / "share" / "embeval" / "datasets",
                            fs::path(EMBEVAL_SOURCE_DIR) / "datasets"}) {
    if (has_suites(p)) return fs::weakly_canonical(p);
  }
  fail("cannot find the bundled datasets; pass --data-dir or set EMBEVAL_DATA_DIR");
}

std::vector<fs::path> resolve_tasks(const std::vector<std::string>& suites, const std::vector<std::string>& task_dirs,
                                    const fs::path& root) {
  std::vector<fs::path> out;
  auto add = [&](const fs::path& p) {
    fs::path norm = fs::weakly_canonical(p);
    if (std::find(out.begin(), out.end(), norm) == out.end()) out.push_back(norm);
  };
  for (const auto& name : suites)
    for (const auto& dir : data::find_suite(name, root).task_dirs) add(dir);
  for (const auto& d : task_dirs) add(d);
  if (out.empty()) fail("no tasks given; use --suite NAME or --task-dir DIR (suites: embeval tasks --suites)");
  return out;
}

RunRecord describe_run(int argc, char** argv) {
  RunRecord r;
  for (int i = 0; i < argc; ++i) r.command += (i ? " " : "") + std::string(argv[i]);
  r.harness_version = EMBEVAL_VERSION;
  r.git_revision = EMBEVAL_GIT_REVISION;
  r.build_type = EMBEVAL_BUILD_TYPE;
  r.host = host_name();
  r.os = os_description();
  r.cpu_model = cpu_model();
  r.cpu_threads = hardware_threads();
  r.threads = torch_threads();
  r.gpu = accelerator_description();
  r.libtorch_version = libtorch_version();
  r.blas = blas_library();
  return r;
}

}  // namespace embeval::cli
