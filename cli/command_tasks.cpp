// embeval tasks: list suites, or the tasks of suites / folders with their sizes.
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "datasets/suite.h"
#include "datasets/task_spec.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "harness/error.h"
#include "harness/task_type.h"

namespace po = boost::program_options;

namespace embeval::cli {

int command_tasks(int argc, char** argv) {
  std::string data_dir;
  std::vector<std::string> suites, task_dirs;
  TaskSelection selection;
  po::options_description opts("embeval tasks [options]");
  opts.add_options()
      ("help,h", "show this help")
      ("suite,s", po::value(&suites)->composing(), "list the tasks of this suite (repeatable)")
      ("task-dir,t", po::value(&task_dirs)->composing(), "list this task folder (repeatable)")
      ("suites", "list the suites")
      ("data-dir", po::value(&data_dir), "bundled data folder");
  selection.add_to(opts);
  po::variables_map vm;
  if (!parse_options(argc, argv, opts, vm)) return 0;

  if (vm.count("suites") || (suites.empty() && task_dirs.empty())) {
    std::filesystem::path root = data_root(data_dir);
    std::printf("| Suite | Tasks | Description |\n| --- | ---: | --- |\n");
    for (const auto& name : data::list_suites(root)) {
      data::Suite s = data::find_suite(name, root);
      std::printf("| %s | %zu | %s |\n", name.c_str(), s.task_dirs.size(), s.description.c_str());
    }
    std::printf("\nTask types: ");
    auto types = task_type_names();
    for (size_t i = 0; i < types.size(); ++i) std::printf("%s%s", i ? ", " : "", types[i].c_str());
    std::printf("\n");
    return 0;
  }
  auto dirs = selection.apply(
      resolve_tasks(suites, task_dirs, suites.empty() ? std::filesystem::path() : data_root(data_dir)));
  std::printf("| Task | Type | Split | Size | Main score | Protocol | Folder |\n| --- | --- | --- | --- | --- | --- | --- |\n");
  for (const auto& dir : dirs) {
    data::TaskSpec spec = data::read_task_spec(dir);
    const TaskType* type = nullptr;
    try {
      type = &find_task_type(spec.type);
    } catch (const UserError& e) {
      fail("{}: {}", (dir / "task.json").string(), e.what());
    }
    // The scikit-learn release whose numerics the scores reproduce, where the type has one.
    const std::string protocol = data::scoring_protocol_applies(spec.type) ? data::scoring_protocol_name(spec.protocol) : "";
    std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", spec.name.c_str(), spec.type.c_str(), spec.eval_split.c_str(),
                type->describe(spec).c_str(), spec.main_score.c_str(), protocol.c_str(), dir.string().c_str());
  }
  return 0;
}

}  // namespace embeval::cli
