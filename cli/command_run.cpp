// embeval run: evaluate one model (or its --quant variants, one after the
// other) on tasks, record every metric, print a table per variant.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "datasets/scoring_protocol.h"
#include "harness/error.h"
#include "harness/interrupt.h"
#include "harness/run_loop.h"
#include "harness/system_info.h"
#include "runners/bert/bert_encoder.h"
#include "runners/encoder_factory.h"

namespace po = boost::program_options;

namespace embeval::cli {

int command_run(int argc, char** argv) {
  std::string model, db, data_dir;
  int latency_samples = 200;
  std::vector<std::string> suites, task_dirs;
  RunnerFlags runner;
  TaskSelection selection;
  po::options_description opts("embeval run [options]");
  std::string forms;
  for (const auto& f : encoder_spec_forms()) forms += "\n  " + f;
  opts.add_options()
      ("help,h", "show this help")
      ("model,m", po::value(&model)->default_value(default_model_spec()), ("model spec:" + forms).c_str())
      ("suite,s", po::value(&suites)->composing(), "suite name (repeatable), e.g. cmteb-mini")
      ("task-dir,t", po::value(&task_dirs)->composing(), "task folder with task.json (repeatable)")
      ("db", po::value(&db)->default_value("results.sqlite"), "results database (created if missing)")
      ("force", "re-evaluate tasks already recorded for this model and dataset")
      ("cache", po::value<std::string>(), "embedding cache folder: vectors keyed by model fingerprint, prompt and text, "
       "reused by later runs instead of encoding again (created if missing)")
      ("protocol", po::value<std::string>(),
       ("scoring protocol of the Classification and Clustering tasks, instead of each task.json's: which "
        "scikit-learn release's numerics MTEB's scores reproduce; " + data::scoring_protocol_choices()).c_str())
      ("fail-fast", "stop at the first task that fails (default: record it as failed, go on, exit 2 at the end)")
      ("data-dir", po::value(&data_dir), "bundled data folder (default: found next to the binary)")
      ("latency-samples", po::value(&latency_samples)->default_value(200),
       "time single-text encoding (batch size 1) on this many of each task's texts, queries first; 0 skips. "
       "With --quant fp32,...: each variant in turn with fp32 on the same texts, fp32's time recorded beside it")
      ("quiet,q", "no progress lines");
  selection.add_to(opts);
  runner.add_to(opts);
  po::variables_map vm;
  if (!parse_options(argc, argv, opts, vm)) return 0;
  std::optional<data::ScoringProtocol> protocol;
  if (vm.count("protocol")) {
    const std::string name = vm["protocol"].as<std::string>();
    protocol = data::parse_scoring_protocol(name);
    if (!protocol)
      throw po::error(fmt::format("--protocol {}: not a scoring protocol; expected {}", name,
                                  data::scoring_protocol_choices()));
  }
  RunnerOptions runner_options = runner.resolve(vm);
  std::vector<RunnerOptions> variants = runner.variants(runner_options);

  // Checked before anything runs: a bad variant, or one the model spec
  // contradicts, fails the command, not its fifth run.
  for (const RunnerOptions& v : variants) (void)spec_options(model, v);
  std::vector<std::filesystem::path> tasks = selection.apply(
      resolve_tasks(suites, task_dirs, suites.empty() ? std::filesystem::path() : data_root(data_dir)));
  runner.add_calibration(variants, model, tasks);
  if (latency_samples < 0) throw po::error("--latency-samples must be >= 0");
  ResultStore store(db);
  install_interrupt_handlers();

  RunOptions options;
  options.force = vm.count("force") > 0;
  options.fail_fast = vm.count("fail-fast") > 0;
  if (vm.count("cache")) options.cache_dir = vm["cache"].as<std::string>();
  options.protocol = protocol;
  std::vector<std::string> failures;  // "spec: task: error", over all variants
  options.latency_samples = latency_samples;
  if (!vm.count("quiet")) options.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  options.progress = !vm.count("quiet") && ::isatty(STDERR_FILENO);
  // Printed even with --quiet: it changes what the timings mean.
  if (const std::string w = blas_warning(); !w.empty()) std::fprintf(stderr, "warning: %s\n", w.c_str());

  // With an fp32 reference and quantized variants, each variant's fidelity
  // to fp32 is measured on the vectors the fp32 run keeps in a scratch folder.
  const bool has_reference = variants.front().quant.empty() &&
                             (variants.front().dtype.empty() || variants.front().dtype == "fp32");
  const bool fidelity = has_reference && variants.size() > 1;
  std::filesystem::path scratch;
  if (fidelity) {
    scratch = std::filesystem::temp_directory_path() / fmt::format("embeval-fp32-vectors-{}", ::getpid());
    std::filesystem::create_directories(scratch);
  }
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{scratch};

  // The fp32 encoder stays loaded while the variants run, so each variant's
  // single-text latency is measured in turn with fp32's on the same texts
  // (RunOptions::latency_reference); its weights stay in memory meanwhile.
  std::unique_ptr<Encoder> reference;
  for (size_t v = 0; v < variants.size(); ++v) {
    std::unique_ptr<Encoder> encoder = make_encoder(model, variants[v]);
    options.fidelity = !fidelity ? RunOptions::Fidelity::none
                       : v == 0  ? RunOptions::Fidelity::save_reference
                                 : RunOptions::Fidelity::compare;
    options.fidelity_dir = scratch;
    options.latency_reference = v > 0 ? reference.get() : nullptr;
    if (options.log) {
      options.log(fmt::format("model {} (dim {}), {} task(s), results in {}", encoder->spec(), encoder->dim(),
                              tasks.size(), db));
      if (auto* bert = dynamic_cast<BertEncoder*>(encoder.get()); bert && !bert->quantization_description().empty()) {
        options.log("quantized: " + bert->quantization_description());
      } else if (bert && bert->info().dtype == "bf16") {
        // Says whether bf16 runs on bf16 instructions here or on the fp32
        // fallback (a CPU without them: no speed-up to expect).
        const nlohmann::ordered_json d = bert->describe();
        if (d.contains("linear_kernel")) options.log("bf16 Linear layers: " + d["linear_kernel"].get<std::string>());
      }
    }
    RunSummary summary = run_tasks(*encoder, tasks, store, describe_run(argc, argv), options);

    if (variants.size() > 1) std::printf("\n%s\n\n", encoder->spec().c_str());
    std::printf("| Task | Type | Main score | x100 | Time (s) |\n| --- | --- | --- | ---: | ---: |\n");
    for (const auto& t : summary.tasks) {
      std::string value = !t.error.empty() ? "failed"
                          : t.main_score   ? fmt::format("{:.2f}", *t.main_score * 100)
                          : t.skipped      ? "recorded"
                                           : "n/a";
      std::string secs = t.skipped ? "skipped" : fmt::format("{:.1f}", t.seconds);
      if (!t.error.empty()) failures.push_back(fmt::format("{}: {}: {}", encoder->spec(), t.name, t.error));
      std::printf("| %s | %s | %s | %s | %s |\n", t.name.c_str(), t.type.c_str(), t.main_score_name.c_str(),
                  value.c_str(), secs.c_str());
    }
    std::fprintf(stderr, "recorded in %s (run %lld)\n", db.c_str(), static_cast<long long>(summary.run_id));
    if (v == 0 && fidelity && latency_samples > 0) reference = std::move(encoder);
  }
  if (!failures.empty())
    fail("{} task run(s) failed, the others are recorded (rerun the same command to evaluate only what is missing): {}",
         failures.size(), fmt::join(failures, "; "));
  return 0;
}

}  // namespace embeval::cli
