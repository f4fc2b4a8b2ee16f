#include "cli/cli_common.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <cstdlib>
#include <fstream>

#include "build_info.h"
#include "datasets/calibration_texts.h"
#include "datasets/suite.h"
#include "datasets/task_spec.h"
#include "harness/error.h"
#include "harness/system_info.h"
#include "harness/task_type.h"
#include "runners/bert/bert_encoder.h"
#include "runners/encoder_factory.h"
#include "runners/quant/quant_spec.h"
#include "runners/torch_runtime.h"

namespace po = boost::program_options;

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

std::string default_model_spec() {
  const fs::path rel = fs::path("models") / "embeval-small-zh";
  std::error_code ec;
  auto is_model = [&](const fs::path& p) { return fs::is_regular_file(p / "config.json", ec); };
  fs::path exe = executable_dir();
  // Absolute, as the spec a run records is (hf: specs name their folder's
  // absolute path), so the default shown here is what reports print.
  for (const fs::path& p : {rel, exe / ".." / rel, exe / ".." / "share" / "embeval" / rel, fs::path(EMBEVAL_SOURCE_DIR) / rel})
    if (is_model(p)) return "hf:" + fs::weakly_canonical(fs::absolute(p)).string();
  return "hf:" + rel.string();  // missing: loading it then names the folder
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

namespace {

// "A,B" and repeated flags alike; blanks dropped.
std::vector<std::string> split_names(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const std::string& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      std::string name = v.substr(start, comma - start);
      name.erase(0, name.find_first_not_of(" \t"));
      name.erase(name.find_last_not_of(" \t") + 1);
      if (!name.empty()) out.push_back(name);
      start = comma + 1;
    }
  }
  return out;
}

}  // namespace

void TaskSelection::add_to(po::options_description& opts) {
  opts.add_options()
      ("tasks", po::value(&tasks)->composing(), "only these tasks, by task.json name (comma-separated or repeated)")
      ("task-types", po::value(&task_types)->composing(), "only tasks of these types, e.g. STS,Retrieval")
      ("exclude", po::value(&exclude)->composing(), "leave these tasks out, by name");
}

std::vector<fs::path> TaskSelection::apply(const std::vector<fs::path>& dirs) const {
  const std::vector<std::string> want = split_names(tasks), types = split_names(task_types), drop = split_names(exclude);
  if (want.empty() && types.empty() && drop.empty()) return dirs;
  std::vector<std::string> names, known_types = task_type_names();
  std::vector<data::TaskSpec> specs;
  for (const fs::path& d : dirs) {
    specs.push_back(data::read_task_spec(d));
    names.push_back(specs.back().name);
  }
  auto check = [&](const std::vector<std::string>& given, const std::vector<std::string>& known, const char* flag,
                   const char* what) {
    for (const std::string& g : given)
      if (std::find(known.begin(), known.end(), g) == known.end())
        fail("{} {}: no such {} among the {} selected task(s){}", flag, g, what, dirs.size(), did_you_mean(g, known));
  };
  check(want, names, "--tasks", "task");
  check(drop, names, "--exclude", "task");
  check(types, known_types, "--task-types", "task type");
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  std::vector<fs::path> out;
  for (size_t i = 0; i < dirs.size(); ++i) {
    if (!want.empty() && !has(want, specs[i].name)) continue;
    if (!types.empty() && !has(types, specs[i].type)) continue;
    if (has(drop, specs[i].name)) continue;
    out.push_back(dirs[i]);
  }
  if (out.empty()) fail("--tasks / --task-types / --exclude leave none of the {} task(s)", dirs.size());
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

void RunnerFlags::add_to(po::options_description& opts) {
  opts.add_options()
      ("device", po::value(&options.device), "cpu (default), cuda or cuda:N")
      ("dtype", po::value(&options.dtype), "fp32 (default), bf16, or fp16 (CUDA)")
      ("batch-size", po::value(&options.batch_size), "texts per forward pass (default 32)")
      ("max-batch-tokens", po::value(&options.max_batch_tokens), "padded tokens per forward pass (default 16384)")
      ("max-length", po::value(&options.max_length), "truncate texts to N tokens, specials included (default: the model's)")
      ("query-prompt", po::value(&query_prompt), "prompt for queries, replacing the task's and the model's (\"\" for none)")
      ("passage-prompt", po::value(&passage_prompt), "prompt for passages, replacing the task's and the model's")
      ("threads", po::value(&threads)->default_value(0), "CPU threads for the encoder and scoring (0: every CPU this process may use)")
      ("quant", po::value(&quant),
       "quantize the checkpoint: one method or a comma-separated list of variants, e.g. "
       "fp32,bf16,wo-int8,wo-int4-g128,w8a8 (run each; with fp32 in the list the others record their fidelity to it)")
      ("fake-quant", "run the quantized integers dequantised through the fp32 kernels (accuracy without kernel effects)")
      ("calib", po::value(&calib_file), "calibration texts for sq-w8a8-aX, gptq-* and awq-* (JSONL lines {\"text\": ...}); default: drawn from the run's tasks (embed: from its input)")
      ("calib-samples", po::value(&calib_samples)->default_value(512), "calibration texts drawn from the tasks or the input (seed 0)");
}

RunnerOptions RunnerFlags::single_variant(const RunnerOptions& resolved, const std::string& model_spec,
                                          const std::vector<std::string>& input, const std::string& input_name) const {
  std::vector<RunnerOptions> variants = this->variants(resolved);
  if (variants.size() != 1) throw po::error("--quant takes one method here (a list is for embeval run)");
  add_calibration(variants, model_spec, {}, input, input_name);
  return variants.front();
}

void RunnerFlags::add_calibration(std::vector<RunnerOptions>& variants, const std::string& model_spec,
                                  const std::vector<fs::path>& task_dirs, const std::vector<std::string>& input,
                                  const std::string& input_name) const {
  // Every method but round-to-nearest learns from calibration texts. Each
  // variant's method is read once (spec_options reads the folder's JSON).
  std::vector<bool> calibrated(variants.size());
  std::string method;  // the first that needs texts, for the messages
  for (size_t i = 0; i < variants.size(); ++i) {
    const std::string q = spec_options(model_spec, variants[i]).quant;
    calibrated[i] = !q.empty() && parse_quant_spec(q).method != QuantMethod::rtn;
    if (calibrated[i] && method.empty()) method = q;
  }
  if (method.empty()) return;
  if (calib_samples < 1) throw po::error("--calib-samples must be positive");
  std::vector<std::string> texts;
  std::string source, short_of;
  if (!calib_file.empty()) {
    texts = data::read_text_lines(calib_file);
    source = fmt::format("{} texts of {}", texts.size(), calib_file);
    short_of = calib_file;
  } else if (!task_dirs.empty()) {
    texts = data::calibration_texts(task_dirs, calib_samples, 0);
    source = fmt::format("{} texts drawn from {} task folder(s), seed 0", texts.size(), task_dirs.size());
    short_of = "the tasks have no more";
  } else if (!input_name.empty()) {
    // embed: the texts it encodes are the task data there is.
    texts = data::sample_texts(input, calib_samples, 0);
    source = fmt::format("{} texts drawn from the input {}, seed 0", texts.size(), input_name);
    short_of = fmt::format("the distinct texts of {}; or give --calib FILE", input_name);
  } else {
    fail("{}: calibrated methods need texts: give --calib FILE (JSONL {{\"text\": ...}})", method);
  }
  if (texts.size() < 16)
    fail("{}: {} calibration texts ({}); calibrated methods need at least 16", method, texts.size(), short_of);
  for (size_t i = 0; i < variants.size(); ++i)
    if (calibrated[i]) {
      variants[i].calib_texts = texts;
      variants[i].calib_source = source;
    }
}

std::vector<RunnerOptions> RunnerFlags::variants(const RunnerOptions& resolved) const {
  if (quant.empty()) {
    if (resolved.fake_quant) throw po::error("--fake-quant needs --quant METHOD");
    return {resolved};
  }
  std::vector<RunnerOptions> out;
  for (const QuantVariant& v : parse_quant_list(quant)) {
    RunnerOptions o = resolved;
    if (!v.dtype.empty()) {
      if (!resolved.dtype.empty() && canonical_dtype(resolved.dtype) != v.dtype)
        throw po::error(fmt::format("--quant lists {} but --dtype says {}; leave --dtype out with --quant", v.name(),
                                    resolved.dtype));
      o.dtype = v.dtype;
    }
    if (v.quant) {
      o.quant = v.quant->name();
    } else {
      o.fake_quant = false;
    }
    out.push_back(o);
  }
  std::stable_partition(out.begin(), out.end(),
                        [](const RunnerOptions& o) { return o.quant.empty() && (o.dtype.empty() || o.dtype == "fp32"); });
  return out;
}

RunnerOptions RunnerFlags::resolve(const po::variables_map& vm) {
  if (threads < 0) throw po::error("--threads must be >= 0");
  if (options.batch_size < 0 || (vm.count("batch-size") && options.batch_size == 0))
    throw po::error("--batch-size must be positive");
  if (options.max_batch_tokens < 0 || (vm.count("max-batch-tokens") && options.max_batch_tokens == 0))
    throw po::error("--max-batch-tokens must be positive");
  if (options.max_length < 0 || (vm.count("max-length") && options.max_length < 2))
    throw po::error("--max-length must be at least 2");
  if (vm.count("query-prompt")) options.query_prompt = query_prompt;
  if (vm.count("passage-prompt")) options.passage_prompt = passage_prompt;
  options.fake_quant = vm.count("fake-quant") > 0;
  set_torch_threads(threads);
  return options;
}

void write_npy(const fs::path& file, const Matrix& m) {
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", m.rows, m.cols);
  // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot write", file.string());
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(len_bytes, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(m.values.data()), static_cast<std::streamsize>(m.values.size() * sizeof(float)));
  if (!out) fail("{}: write failed", file.string());
}

bool parse_options(int argc, char** argv, const boost::program_options::options_description& opts,
                   boost::program_options::variables_map& vm) {
  namespace po = boost::program_options;
  po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

}  // namespace embeval::cli
