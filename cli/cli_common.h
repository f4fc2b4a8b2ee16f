#pragma once
// Shared plumbing of the embeval subcommands: locating the bundled data,
// resolving --suite / --task-dir into task folders, and describing the run.
#include <filesystem>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "harness/result_store.h"
#include "runners/bert/runner_options.h"

namespace embeval::cli {

// Where bundled data lives: --data-dir, else $EMBEVAL_DATA_DIR, else
// <executable>/../datasets, else the source tree the binary was built from.
std::filesystem::path data_root(const std::string& flag_value);

// The bundled default model (models/embeval-small-zh, trained by the project
// itself: see models/README.md) as a model spec naming its absolute path:
// the copy in the current folder's models/ (the README's commands run from
// the checkout), else beside the executable, else in the source tree the
// binary was built from (when none exists, the relative spec, which then
// fails to load with a line naming the folder).
std::string default_model_spec();

// Task folders from suites and/or explicit folders; duplicates dropped.
std::vector<std::filesystem::path> resolve_tasks(const std::vector<std::string>& suites,
                                                 const std::vector<std::string>& task_dirs,
                                                 const std::filesystem::path& data_root);

// --tasks, --task-types and --exclude, shared by run and tasks: which of the
// resolved task folders to keep. Names are task.json names, matched exactly
// (as MTEB's get_tasks does); an unknown name or type is an error with a
// suggestion, and so is a selection that leaves nothing.
struct TaskSelection {
  std::vector<std::string> tasks, task_types, exclude;
  void add_to(boost::program_options::options_description& opts);
  std::vector<std::filesystem::path> apply(const std::vector<std::filesystem::path>& dirs) const;
};

RunRecord describe_run(int argc, char** argv);

// Parses a subcommand's options into vm. Returns false when --help was asked
// for (the help text is printed; the command then exits 0); option errors
// throw boost::program_options::error.
bool parse_options(int argc, char** argv, const boost::program_options::options_description& opts,
                   boost::program_options::variables_map& vm);

// The flags that say how to run a model (--device, --dtype, --batch-size,
// --max-batch-tokens, --max-length, --query-prompt, --passage-prompt,
// --threads), shared by run, embed and models.
struct RunnerFlags {
  RunnerOptions options;
  std::string query_prompt, passage_prompt, quant, calib_file;
  int64_t calib_samples = 512;
  int threads = 0;
  void add_to(boost::program_options::options_description& opts);
  // After parsing: copies the prompts that were given, checks values, sets threads.
  RunnerOptions resolve(const boost::program_options::variables_map& vm);
  // One RunnerOptions per --quant entry (the resolved options alone without
  // --quant), the fp32 entry first: it is the reference the others' fidelity
  // is measured against.
  std::vector<RunnerOptions> variants(const RunnerOptions& resolved) const;
  // Fills calib_texts / calib_source of the variants whose method needs
  // calibration, named by --quant or by the model spec's METHOD token (a
  // recorded spec such as hf:DIR,fp32,awq-int4-g128 run again): --calib FILE,
  // else --calib-samples texts drawn (seed 0) from `task_dirs`, else from
  // `input` (embed's texts, from the file `input_name`). UserError when none
  // can be had or too few.
  void add_calibration(std::vector<RunnerOptions>& variants, const std::string& model_spec,
                       const std::vector<std::filesystem::path>& task_dirs, const std::vector<std::string>& input = {},
                       const std::string& input_name = "") const;
  // For the commands that load one model (embed, models): the one variant
  // --quant names, calibrated as above; a list is an error.
  RunnerOptions single_variant(const RunnerOptions& resolved, const std::string& model_spec,
                               const std::vector<std::string>& input = {}, const std::string& input_name = "") const;
};

// Writes rows x cols float32 as NumPy's .npy (format 1.0, little-endian, C order).
void write_npy(const std::filesystem::path& file, const Matrix& m);

}  // namespace embeval::cli
