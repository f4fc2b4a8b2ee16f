// embeval quantize: quantize a checkpoint folder with one method and save it
// as a checkpoint folder in that method's layout (AutoGPTQ, AutoAWQ GEMM or
// embeval's W8A8; runners/quant/quantized_checkpoint.h). Before it reports
// success it loads the saved folder the way `run` would and checks that it
// gives the vectors the quantized model gave in memory.
#include <algorithm>
#include <cstdio>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "build_info.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "datasets/calibration_texts.h"
#include "harness/error.h"
#include "harness/fidelity.h"
#include "runners/checkpoint_quantizer.h"
#include "runners/encoder_factory.h"
#include "runners/quant/quant_spec.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace embeval::cli {

int command_quantize(int argc, char** argv) {
  std::string model, method, out, data_dir;
  std::vector<std::string> suites, task_dirs;
  int64_t check_texts = 64;
  RunnerFlags runner;
  po::options_description opts(
      "embeval quantize --model DIR --method METHOD --out DIR [--calib-suite NAME | --calib-task-dir DIR | --calib "
      "FILE] [options]");
  std::string forms;
  for (const auto& f : quant_spec_forms()) forms += "\n  " + f;
  opts.add_options()
      ("help,h", "show this help")
      ("model,m", po::value(&model)->required(), "checkpoint folder (Hugging Face / sentence-transformers)")
      ("method", po::value(&method)->required(), ("quantization method:" + forms).c_str())
      ("out,o", po::value(&out)->required(), "new folder for the quantized checkpoint (must not exist)")
      ("calib-suite", po::value(&suites)->composing(), "draw calibration texts from this suite's tasks (repeatable)")
      ("calib-task-dir", po::value(&task_dirs)->composing(), "draw calibration texts from this task folder (repeatable)")
      ("data-dir", po::value(&data_dir), "bundled data folder (default: found next to the binary)")
      ("check-texts", po::value(&check_texts)->default_value(64),
       "texts on which the saved checkpoint, loaded again, must give the in-memory model's vectors (0 skips)")
      ("quiet,q", "no summary");
  runner.add_to(opts);
  po::variables_map vm;
  if (!parse_options(argc, argv, opts, vm)) return 0;
  if (vm.count("quant")) throw po::error("give the method with --method (--quant is for run / embed)");
  if (check_texts < 0) throw po::error("--check-texts must be >= 0");
  const RunnerOptions resolved = runner.resolve(vm);
  runner.quant = parse_quant_spec(method).name();
  std::vector<RunnerOptions> variants = runner.variants(resolved);
  EMBEVAL_ASSERT(variants.size() == 1);
  if (fs::exists(out)) fail("{}: already exists; give a new folder for the quantized checkpoint", out);
  const std::vector<fs::path> tasks =
      suites.empty() && task_dirs.empty()
          ? std::vector<fs::path>()
          : resolve_tasks(suites, task_dirs, suites.empty() ? fs::path() : data_root(data_dir));
  runner.add_calibration(variants, model, tasks);
  const RunnerOptions& options = variants.front();

  const std::string tool = fmt::format("embeval {} ({})", EMBEVAL_VERSION, EMBEVAL_GIT_REVISION);
  CheckpointQuantization q = quantize_checkpoint(model, options, out, tool);

  // The saved folder, loaded as `run` would load it, against the model in memory.
  double min_cos = 1, mean_cos = 1;
  int64_t checked = 0;
  if (check_texts > 0) {
    std::vector<std::string> texts = options.calib_texts;
    if (texts.empty() && !tasks.empty()) texts = data::calibration_texts(tasks, check_texts, 1);
    if (texts.empty())
      texts = {"今天天气很好", "深度学习模型的量化", "The quick brown fox jumps over the lazy dog.", "检索增强生成",
               "如何评价一个文本向量模型？", "a", "北京是中国的首都。", "0123456789"};
    texts.resize(std::min<size_t>(texts.size(), static_cast<size_t>(check_texts)));
    RunnerOptions plain = resolved;
    plain.quant.clear();
    plain.calib_texts.clear();
    plain.calib_source.clear();
    const std::unique_ptr<Encoder> loaded = make_encoder(out, plain);
    EncodeOptions eo;
    const Matrix a = q.encoder->encode(texts, eo), b = loaded->encode(texts, eo);
    const Fidelity f = compare_rows(a, b);
    min_cos = f.min_cosine;
    mean_cos = f.mean_cosine;
    checked = static_cast<int64_t>(texts.size());
    // The same integers through the same kernels: only float summation order may differ.
    if (min_cos < 0.99999)
      fail("{}: the saved checkpoint, loaded again, gives other vectors than the quantized model did (min cosine {:.6f} "
           "on {} texts); the folder is kept for inspection",
           out, min_cos, checked);
  }
  if (!vm.count("quiet")) {
    std::printf("%s\n", fmt::format("{} -> {}\n  {}\n  {:.1f} s; Linear weights {:.2f} -> {:.2f} MB{}", model, out,
                                    q.description, q.seconds, q.bytes_before / 1e6, q.bytes_after / 1e6,
                                    checked ? fmt::format("\n  reloaded from disk: min cosine {:.7f} (mean {:.7f}) to "
                                                          "the in-memory model on {} texts",
                                                          min_cos, mean_cos, checked)
                                            : "")
                            .c_str());
  }
  return 0;
}

}  // namespace embeval::cli
