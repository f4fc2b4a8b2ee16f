// Quantized variants end to end, side by side in one process: a random
// checkpoint at bge-small-zh's shape (hidden 512, 4 layers, 8 heads, FFN
// 2048) with the bert-base-chinese vocabulary, or the checkpoint --model
// names (e.g. the bundled models/embeval-small-zh), encodes real C-MTEB
// texts (LCQMC-mini and MedicalDialogueRetrieval-mini, --texts of them) in
// fp32 and in each quantized variant, one after another. Per variant:
// encode time (after a warm-up batch), texts/s and its ratio to fp32, mean
// and minimum cosine of each embedding to the fp32 one, and what quantizing
// did (kernel, seconds, Linear weight bytes). Random weights say nothing
// about scores; they do say what the kernels cost and how far each method
// moves the vectors.
//
// --latency N: then single-text latency (batch 1, as `embeval run`
// measures it, tokenising included) over N texts, in rounds of 25 texts a
// variant, the variants in turn and the first rotating from round to round,
// so the VM's drift costs every variant alike: p50, p95 and the p50's ratio
// to fp32's. A run of one variant after another (what `embeval run` does)
// puts minutes between them on a VM whose speed drifts by 10-30%, which a
// 0.5 ms forward cannot average out.
//
// Run: ./build/tests/bench_quant_e2e [--texts 400] [--threads 0] [--variants wo-int8,w8a8,...]
//      [--model DIR] [--latency N] [--tasks LCQMC,MedicalDialogueRetrieval]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
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

int run_bench(int argc, char** argv) {
  int64_t n_texts = 400;
  int threads = 0;
  std::string variants = "wo-int8,wo-int4-g128,w8a8,sq-w8a8-a0.5,gptq-int4-g128,gptq-int4-g128-actorder,awq-int4-g128";
  std::string model, task_list = "LCQMC,MedicalDialogueRetrieval";
  int64_t latency = 0;
  const char* const usage =
      "options: --texts N, --threads N, --variants LIST, --model DIR, --latency N (single-text rounds), --tasks LIST";
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return std::printf("%s\n", usage), 0;
  if (argc % 2 == 0) return std::fprintf(stderr, "bench_quant_e2e: error: %s needs a value\n", argv[argc - 1]), 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    auto count = [&] {
      size_t used = 0;
      int64_t n = -1;
      try {
        n = std::stoll(v, &used);
      } catch (const std::exception&) {
      }
      if (used != v.size() || n < 0) throw std::runtime_error(k + " takes a count, not \"" + v + "\"");
      return n;
    };
    if (k == "--texts") n_texts = count();
    else if (k == "--threads") threads = static_cast<int>(count());
    else if (k == "--variants") variants = v;
    else if (k == "--model") model = v;
    else if (k == "--latency") latency = count();
    else if (k == "--tasks") task_list = v;
    else return std::fprintf(stderr, "bench_quant_e2e: error: unknown option %s; %s\n", k.c_str(), usage), 2;
  }
  tune_malloc_for_inference();
  set_torch_threads(threads);

  fs::path dir = model;
  if (model.empty()) {
    dir = fs::temp_directory_path() / "embeval-bench-quant-e2e";
    test::TinyCheckpoint c;
    c.hidden_size = 512, c.num_layers = 4, c.num_heads = 8, c.intermediate_size = 2048;
    c.vocab_size = 21128, c.max_position_embeddings = 512, c.extra_heads = false, c.seed = 3;
    test::write_checkpoint(dir, c);
    fs::copy_file(SOURCE / "tests/data/tokenizer/bert-base-chinese-vocab.txt", dir / "vocab.txt",
                  fs::copy_options::overwrite_existing);
  }

  std::vector<fs::path> tasks;
  for (size_t a = 0, b; a <= task_list.size(); a = b + 1) {
    b = std::min(task_list.find(',', a), task_list.size());
    if (b > a) tasks.push_back(SOURCE / "datasets/cmteb" / task_list.substr(a, b - a) / "mini");
  }
  const std::vector<std::string> texts = data::calibration_texts(tasks, n_texts, 1);
  RunnerOptions base;
  base.calib_texts = data::calibration_texts(tasks, 128, 0);
  base.calib_source = "128 texts, seed 0";

  // Each variant's encoder, kept for the latency rounds.
  std::vector<std::pair<std::string, std::unique_ptr<Encoder>>> encoders;
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
    if (latency > 0) encoders.emplace_back(quant.empty() ? "fp32" : quant, std::move(enc));
    return m;
  };

  std::printf("%s, %zu texts, %d thread(s)\n\n", model.empty() ? "bge-small shape (random weights)" : model.c_str(),
              texts.size(), at::get_num_threads());
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
  if (latency <= 0 || encoders.empty()) return 0;

  // Single-text latency in rounds: each variant in turn (the first rotating
  // from round to round) encodes two texts untimed, to bring its weights
  // back into the caches another variant's took, then times the round's
  // block of texts one at a time. Interleaving text by text instead
  // measured each variant with cold caches: fp32's 9.7 MB of weights came
  // back from memory where int4's 1.5 MB did not (fp32 0.92-1.23 ms p50 that
  // way against 0.40-0.56 in `embeval run`).
  const size_t nv = encoders.size(), n = std::min<size_t>(static_cast<size_t>(latency), texts.size());
  constexpr size_t BLOCK = 25;
  std::vector<std::vector<double>> ms(nv);
  for (size_t b0 = 0, round = 0; b0 < n; b0 += BLOCK, ++round)
    for (size_t j = 0; j < nv; ++j) {
      Encoder& enc = *encoders[(round + j) % nv].second;
      for (size_t i = 0; i < 2; ++i) enc.encode({texts[(b0 + n - 1 - i) % n]}, EncodeOptions{});
      for (size_t i = b0; i < std::min(n, b0 + BLOCK); ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        enc.encode({texts[i]}, EncodeOptions{});
        ms[(round + j) % nv].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
    }
  auto pct = [](std::vector<double> x, double p) {
    std::sort(x.begin(), x.end());
    return x[std::min(x.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(x.size())))];
  };
  std::printf("\nSingle-text latency, %zu texts, in rounds of %zu a variant, the variants in turn:\n\n", n, BLOCK);
  std::printf("| variant | p50 ms | p95 ms | p50 vs fp32 |\n| --- | ---: | ---: | ---: |\n");
  const double ref50 = pct(ms[0], 50);
  for (size_t v = 0; v < nv; ++v)
    std::printf("| %s | %.3f | %.3f | %.2fx |\n", encoders[v].first.c_str(), pct(ms[v], 50), pct(ms[v], 95),
                pct(ms[v], 50) / ref50);
  return 0;
}

int main(int argc, char** argv) {
  // A bad option value or variant (a group size the model's widths do not
  // allow: --variants wo-int4-g64,... for the bundled 448-wide model) is one
  // line, not an uncaught exception.
  try {
    return run_bench(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_quant_e2e: error: %s\n", e.what());
    return 2;
  }
}
