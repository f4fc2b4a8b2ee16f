// Quantized variants end to end, side by side in one process: a random
// checkpoint at bge-small-zh's shape (hidden 512, 4 layers, 8 heads, FFN
// 2048) with the bert-base-chinese vocabulary encodes real C-MTEB texts
// (LCQMC-mini and MedicalDialogueRetrieval-mini, --texts of them) in fp32
// and in each quantized variant, one after another. Per variant: encode
// time (after a warm-up batch), texts/s and its ratio to fp32, mean and
// minimum cosine of each embedding to the fp32 one, and what quantizing did
// (kernel, seconds, Linear weight bytes). Random weights say nothing about
// scores; they do say what the kernels cost and how far each method moves
// the vectors.
//
// Run: ./build/tests/bench_quant_e2e [--texts 400] [--threads 0] [--variants wo-int8,w8a8,...]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "../checkpoint_writer.h"
#include "datasets/calibration_texts.h"
#include "harness/fidelity.h"
#include "runners/bert/bert_encoder.h"
#include "runners/encoder_factory.h"
#include "runners/quant/quant_spec.h"
#include "runners/torch_runtime.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

const fs::path SOURCE = EMBEVAL_SOURCE_DIR;

}  // namespace

int main(int argc, char** argv) {
  int64_t n_texts = 400;
  int threads = 0;
  std::string variants = "wo-int8,wo-int4-g128,w8a8,sq-w8a8-a0.5,gptq-int4-g128,gptq-int4-g128-actorder,awq-int4-g128";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--texts") n_texts = std::stoll(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--variants") variants = v;
    else return std::fprintf(stderr, "unknown option %s\n", k.c_str()), 2;
  }
  tune_malloc_for_inference();
  set_torch_threads(threads);

  const fs::path dir = fs::temp_directory_path() / "embeval-bench-quant-e2e";
  test::TinyCheckpoint c;
  c.hidden_size = 512, c.num_layers = 4, c.num_heads = 8, c.intermediate_size = 2048;
  c.vocab_size = 21128, c.max_position_embeddings = 512, c.extra_heads = false, c.seed = 3;
  test::write_checkpoint(dir, c);
  fs::copy_file(SOURCE / "tests/data/tokenizer/bert-base-chinese-vocab.txt", dir / "vocab.txt", fs::copy_options::overwrite_existing);

  const std::vector<fs::path> tasks = {SOURCE / "datasets/cmteb/LCQMC/mini",
                                       SOURCE / "datasets/cmteb/MedicalDialogueRetrieval/mini"};
  const std::vector<std::string> texts = data::calibration_texts(tasks, n_texts, 1);
  RunnerOptions base;
  base.calib_texts = data::calibration_texts(tasks, 128, 0);
  base.calib_source = "128 texts, seed 0";

  auto run = [&](const std::string& quant, double* seconds, std::string* what) {
    RunnerOptions o = base;
    o.quant = quant;
    auto t0 = std::chrono::steady_clock::now();
    auto enc = make_encoder("hf:" + dir.string(), o);
    const double load = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    enc->encode({texts.begin(), texts.begin() + std::min<size_t>(16, texts.size())}, EncodeOptions{});  // warm-up
    t0 = std::chrono::steady_clock::now();
    Matrix m = enc->encode(texts, EncodeOptions{});
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto* bert = dynamic_cast<BertEncoder*>(enc.get());
    *what = bert && !bert->quantization_description().empty() ? bert->quantization_description()
                                                                : fmt::format("fp32, loaded in {:.1f} s", load);
    return m;
  };

  std::printf("bge-small shape, %zu texts, %d thread(s)\n\n", texts.size(), at::get_num_threads());
  std::printf("| variant | encode s | texts/s | vs fp32 | mean cos | min cos | quantization |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
  double t_ref = 0;
  std::string what;
  const Matrix ref = run("", &t_ref, &what);
  std::printf("| fp32 | %.2f | %.1f | 1.00x | 1 | 1 | %s |\n", t_ref, texts.size() / t_ref, what.c_str());
  for (const QuantVariant& v : parse_quant_list(variants)) {
    if (!v.quant) continue;
    double t = 0;
    const Matrix m = run(v.quant->name(), &t, &what);
    const Fidelity f = compare_rows(ref, m);
    std::printf("| %s | %.2f | %.1f | %.2fx | %.5f | %.5f | %s |\n", v.quant->name().c_str(), t, texts.size() / t,
                t_ref / t, f.mean_cosine, f.min_cosine, what.c_str());
    std::fflush(stdout);
  }
  return 0;
}
