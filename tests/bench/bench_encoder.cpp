// The native BERT forward pass (runners/bert/bert_model.h) at the shapes the
// issue names, random weights, batch 32: bge-small-zh-v1.5 (hidden 512, 4
// layers, 8 heads, FFN 2048), bert-base (768 x 12, FFN 3072) and bert-large
// / Conan-embedding-v1 (1024 x 24, FFN 4096), at sequence lengths 32, 128
// and 512, 1 and 2 ATen threads, fp32 and bf16. Counters: sentences/s,
// tokens/s and GFLOP/s, where FLOPs = batch x seq x layers x (8 h^2 + 4 h ff
// + 4 seq h) (the GEMMs and both attention products). BM_gemm_peak measures
// the machine's GEMM peak through the encoder's own Linear kernel and
// through at::mm (BLAS) for the fraction. scripts/bench_encoder_vs_eager.sh
// runs this and scripts/bench_pytorch_eager.py (PyTorch eager, same shapes)
// one after the other and prints the ratios.
//
// Before timing, each model's answer is checked: every row of the padded
// batch must equal that sentence encoded alone (max |diff| 1e-3 in fp32,
// 0.1 in bf16); a mismatch fails the benchmark.
//
// With a CUDA libtorch and a GPU, BM_encoder_cuda (dtype 0 fp32, 1 fp16, 2
// bf16) and BM_gemm_peak_cuda (cuBLAS through at::mm) run the same models on
// cuda:0; each iteration ends with a device synchronize, so the time is the
// batch's, not the launch queue's.
//
// BM_attention: the attention kernel alone for one long text, tiled vs the
// whole score matrix, with the memory each adds. BM_attention_bf16: bf16
// attention at bert-base's 12 heads of 64, batch 32, 2 threads, through
// embeval's kernel (runners/kernels/cpu_attention.h) with AMX products
// (form 0) or VDPBF16PS products (form 2), each skipped where the CPU lacks
// it, or the oneDNN forms (form 1, EMBEVAL_NO_BF16_ATTENTION=1).
// BM_attention_fp32: the same in fp32, embeval's FMA kernel (form 0) or
// the oneDNN forms (form 1, EMBEVAL_NO_FP32_ATTENTION=1).
// BM_add_layer_norm: the bf16 add + LayerNorm kernel on 4,096 x 768.
//
// Run: ./build/tests/bench_encoder --benchmark_filter='BM_encoder/shape:0/seq:128/threads:1/bf16:0'
// (shape 0 bge-small, 1 bert-base, 2 bert-large)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "harness/system_info.h"
#include "runners/kernels/attention.h"
#include "runners/kernels/cpu_attention.h"
#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/kernels/layer_norm.h"
#include "runners/kernels/packed_linear.h"
#include "runners/torch_runtime.h"

using namespace embeval;

namespace {

struct Shape {
  const char* name;
  int64_t hidden, layers, heads, ffn;
};
const Shape SHAPES[] = {{"bge_small", 512, 4, 8, 2048}, {"bert_base", 768, 12, 12, 3072}, {"bert_large", 1024, 24, 16, 4096}};
constexpr int64_t BATCH = 32, VOCAB = 8000;

BertConfig config_of(const Shape& s) {
  BertConfig c;
  c.model_type = "bert";
  c.vocab_size = VOCAB;
  c.hidden_size = s.hidden;
  c.num_hidden_layers = s.layers;
  c.num_attention_heads = s.heads;
  c.intermediate_size = s.ffn;
  c.max_position_embeddings = 512;
  return c;
}

// Random weights in memory (no file): std 1/sqrt(fan_in) keeps activations O(1).
std::unique_ptr<BertModel> make_model(const Shape& s, at::ScalarType dtype, c10::Device device) {
  at::manual_seed(0);
  StateDict w;
  const int64_t h = s.hidden, ff = s.ffn;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double std, double mean = 0) {
    w.tensors[name] = at::randn(shape).mul_(std).add_(mean);
  };
  add("embeddings.word_embeddings.weight", {VOCAB, h}, 1);
  add("embeddings.position_embeddings.weight", {512, h}, 0.5);
  add("embeddings.token_type_embeddings.weight", {2, h}, 0.5);
  add("embeddings.LayerNorm.weight", {h}, 0.1, 1);
  add("embeddings.LayerNorm.bias", {h}, 0.1);
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    for (const char* m : {"query", "key", "value"}) {
      add(p + "attention.self." + m + ".weight", {h, h}, 1 / std::sqrt(double(h)));
      add(p + "attention.self." + m + ".bias", {h}, 0.1);
    }
    add(p + "attention.output.dense.weight", {h, h}, 1 / std::sqrt(double(h)));
    add(p + "attention.output.dense.bias", {h}, 0.1);
    add(p + "attention.output.LayerNorm.weight", {h}, 0.1, 1);
    add(p + "attention.output.LayerNorm.bias", {h}, 0.1);
    add(p + "intermediate.dense.weight", {ff, h}, 1 / std::sqrt(double(h)));
    add(p + "intermediate.dense.bias", {ff}, 0.1);
    add(p + "output.dense.weight", {h, ff}, 1 / std::sqrt(double(ff)));
    add(p + "output.dense.bias", {h}, 0.1);
    add(p + "output.LayerNorm.weight", {h}, 0.1, 1);
    add(p + "output.LayerNorm.bias", {h}, 0.1);
  }
  return std::make_unique<BertModel>(config_of(s), w, dtype, device, "random");
}

BertModel& model(int shape, at::ScalarType dtype, c10::Device device = c10::Device(c10::kCPU)) {
  static std::map<std::tuple<int, int, bool>, std::unique_ptr<BertModel>> cache;
  auto key = std::make_tuple(shape, static_cast<int>(dtype), device.is_cuda());
  auto it = cache.find(key);
  if (it == cache.end()) {
    cache.clear();  // one model at a time: bert-large is 1.3 GB in fp32
    it = cache.emplace(key, make_model(SHAPES[shape], dtype, device)).first;
  }
  return *it->second;
}

// A batch with lengths seq, seq-1, ... (at least 2): real padding, like a length-sorted batch.
std::pair<at::Tensor, at::Tensor> make_batch(int64_t seq) {
  at::manual_seed(1);
  at::Tensor ids = at::randint(5, VOCAB, {BATCH, seq}, at::kLong);
  at::Tensor mask = at::ones({BATCH, seq}, at::kLong);
  for (int64_t r = 0; r < BATCH; ++r) {
    int64_t len = std::max<int64_t>(2, seq - r * seq / (4 * BATCH));
    ids[r].narrow(0, len, seq - len).fill_(0);
    mask[r].narrow(0, len, seq - len).fill_(0);
  }
  return {ids, mask};
}

// Times m.forward on one padded batch after checking it: a padded row must
// equal the same sentence alone. Ends each iteration with a synchronize on CUDA.
void run_encoder(benchmark::State& state, const Shape& s, BertModel& m, int64_t seq, const std::string& label) {
  const bool cuda = m.device().is_cuda();
  auto [ids, mask] = make_batch(seq);
  ids = ids.to(m.device());
  mask = mask.to(m.device());
  {
    at::Tensor batch = m.forward(ids, mask).to(at::kFloat);
    const int64_t r = BATCH - 1, len = mask[r].sum().item<int64_t>();
    at::Tensor alone = m.forward(ids[r].narrow(0, 0, len).unsqueeze(0), mask[r].narrow(0, 0, len).unsqueeze(0));
    double diff = (batch[r].narrow(0, 0, len) - alone[0].to(at::kFloat)).abs().max().item<double>();
    if (!std::isfinite(diff) || diff > (m.dtype() == at::kFloat ? 1e-3 : 0.1)) {
      state.SkipWithError(("padded row differs from the sentence alone by " + std::to_string(diff)).c_str());
      return;
    }
  }
  for (auto _ : state) {
    at::Tensor out = m.forward(ids, mask);
    if (cuda) torch::cuda::synchronize();
    benchmark::DoNotOptimize(out.data_ptr());
  }
  const double flops = double(BATCH) * seq * s.layers *
                       (8.0 * s.hidden * s.hidden + 4.0 * s.hidden * s.ffn + 4.0 * seq * s.hidden);
  const double iters = static_cast<double>(state.iterations());
  state.counters["sent_per_s"] = benchmark::Counter(BATCH * iters, benchmark::Counter::kIsRate);
  state.counters["tok_per_s"] = benchmark::Counter(double(BATCH) * seq * iters, benchmark::Counter::kIsRate);
  state.counters["GFLOP_per_s"] = benchmark::Counter(flops * iters / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(label);
}

void BM_encoder(benchmark::State& state) {
  const int shape = static_cast<int>(state.range(0));
  const at::ScalarType dtype = state.range(3) ? at::kBFloat16 : at::kFloat;
  at::set_num_threads(static_cast<int>(state.range(2)));
  run_encoder(state, SHAPES[shape], model(shape, dtype), state.range(1),
              std::string(SHAPES[shape].name) + (dtype == at::kFloat ? " fp32" : " bf16"));
}

constexpr at::ScalarType CUDA_TYPES[] = {at::kFloat, at::kHalf, at::kBFloat16};
constexpr const char* CUDA_TYPE_NAMES[] = {"fp32", "fp16", "bf16"};

void BM_encoder_cuda(benchmark::State& state) {
  const int shape = static_cast<int>(state.range(0));
  const int type = static_cast<int>(state.range(2));
  run_encoder(state, SHAPES[shape], model(shape, CUDA_TYPES[type], c10::Device(c10::kCUDA, 0)), state.range(1),
              std::string(SHAPES[shape].name) + " " + CUDA_TYPE_NAMES[type] + " cuda");
}

// The GEMM peaks the encoder's GFLOP/s are a fraction of: 4096 x 1024 x 1024
// through the encoder's own Linear kernel (oneDNN where built with it; bf16
// on AMX embeval's, runners/kernels/amx_bf16_gemm.h) in fp32 and bf16,
// bf16 through oneDNN's kernel too (kind 3: EMBEVAL_NO_AMX_BF16_GEMM=1
// while the layer is made; the peak is the faster, so embeval's own kernel
// cannot lower the bar it is measured against), and through at::mm
// (whatever BLAS libblas.so.3 is).
void BM_gemm_peak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  // 0 PackedLinear fp32, 1 PackedLinear bf16, 2 at::mm fp32, 3 PackedLinear bf16 on oneDNN's kernel
  const int kind = static_cast<int>(state.range(1));
  at::set_num_threads(threads);
  const int64_t m = 4096, n = 1024, k = 1024;
  const at::ScalarType type = kind == 1 || kind == 3 ? at::kBFloat16 : at::kFloat;
  at::Tensor x = at::randn({m, k}).to(type), w = at::randn({n, k}).to(type);
  const char* had = std::getenv("EMBEVAL_NO_AMX_BF16_GEMM");
  const std::string saved = had ? had : "";
  if (kind == 3) setenv("EMBEVAL_NO_AMX_BF16_GEMM", "1", 1);
  PackedLinear layer(w, at::Tensor(), LinearActivation::none);
  if (kind == 3) {
    if (had)
      setenv("EMBEVAL_NO_AMX_BF16_GEMM", saved.c_str(), 1);
    else
      unsetenv("EMBEVAL_NO_AMX_BF16_GEMM");
  }
  for (auto _ : state) {
    at::Tensor y = kind == 2 ? at::mm(x, w.t()) : layer(x);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["GFLOP_per_s"] =
      benchmark::Counter(2.0 * m * n * k * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(kind == 2 ? "at::mm fp32 (BLAS)" : layer.implementation() + (type == at::kBFloat16 ? " bf16" : " fp32"));
}

// cuBLAS's GEMM peak at a size that fills an H100-class GPU: 8192^3 through at::mm.
void BM_gemm_peak_cuda(benchmark::State& state) {
  const int type = static_cast<int>(state.range(0));
  const int64_t n = 8192;
  const auto opts = at::TensorOptions().dtype(CUDA_TYPES[type]).device(c10::Device(c10::kCUDA, 0));
  at::Tensor x = at::randn({n, n}, opts), w = at::randn({n, n}, opts);
  at::mm(x, w.t());
  torch::cuda::synchronize();
  for (auto _ : state) {
    at::Tensor y = at::mm(x, w.t());
    torch::cuda::synchronize();
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["GFLOP_per_s"] =
      benchmark::Counter(2.0 * n * n * n * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string("at::mm ") + CUDA_TYPE_NAMES[type] + " cuda");
}

// Attention alone at bge-m3's head layout (16 heads of 64) for one long
// text: the encoder's tiled kernel (kind 0) against ATen matmul + softmax
// over the whole score matrix (kind 1, what a plain eager forward does), with
// the peak memory each adds to the process.
void BM_attention(benchmark::State& state) {
  const int64_t t = state.range(0), heads = 16, h = heads * 64;
  const bool whole = state.range(1) == 1;
  at::set_num_threads(1);
  at::manual_seed(2);
  at::Tensor qkv = at::randn({1, t, 3 * h});
  at::Tensor mask = at::zeros({1, 1, 1, t});
  auto run = [&] {
    return whole ? aten_qkv_attention(qkv, mask, heads, std::numeric_limits<int64_t>::max())
                 : fused_qkv_attention(qkv, mask, heads);
  };
  run();
  reset_peak_rss();
  const int64_t before = peak_rss_bytes();
  for (auto _ : state) {
    at::Tensor ctx = run();
    benchmark::DoNotOptimize(ctx.data_ptr());
  }
  state.counters["peak_MB_added"] = static_cast<double>(peak_rss_bytes() - before) / (1 << 20);
  state.SetLabel(whole ? "ATen, whole score matrix" : "encoder kernel, tiled");
}

void BM_attention_bf16(benchmark::State& state) {
  const int64_t t = state.range(0), heads = 12, h = heads * 64, b = 32;
  const int form = static_cast<int>(state.range(1));
  const Bf16AttentionProducts kind = form == 0 ? Bf16AttentionProducts::amx : Bf16AttentionProducts::avx512_bf16;
  if (form != 1 && !bf16_attention_runs(kind)) {
    state.SkipWithError(fmt::format("no {} attention kernel on this CPU", bf16_attention_name(kind)).c_str());
    return;
  }
  at::set_num_threads(2);
  at::manual_seed(2);
  at::Tensor qkv = at::randn({b, t, 3 * h}).to(at::kBFloat16);
  at::Tensor keep = at::ones({b, t});
  keep.narrow(1, t / 2, t / 2).narrow(0, 0, b / 2).zero_();  // half the rows half padding
  // bf16's lowest where masked, as BertModel::mask_bias
  at::Tensor mask = (1.0 - keep).mul_(-3.3895313892515355e38).view({b, 1, 1, t}).to(at::kBFloat16);
  const at::Tensor mask_f32 = mask.to(at::kFloat).reshape({b, t}).contiguous();
  if (form == 1) setenv("EMBEVAL_NO_BF16_ATTENTION", "1", 1);
  for (auto _ : state) {
    if (form != 1) {  // the kernel itself: fused_qkv_attention prefers the row-wise form at seq 128 on AMX
      at::Tensor ctx = at::empty({b, t, h}, at::kBFloat16);
      bf16_attention(reinterpret_cast<const uint16_t*>(qkv.data_ptr<at::BFloat16>()), mask_f32.data_ptr<float>(), b, t,
                     heads, 64, reinterpret_cast<uint16_t*>(ctx.data_ptr<at::BFloat16>()), kind);
      benchmark::DoNotOptimize(ctx.data_ptr());
    } else {
      at::Tensor ctx = fused_qkv_attention(qkv, mask, heads);
      benchmark::DoNotOptimize(ctx.data_ptr());
    }
  }
  unsetenv("EMBEVAL_NO_BF16_ATTENTION");
  // Every key counted, the masked ones the kernel skips too.
  const double flops = 4.0 * b * heads * t * t * 64;
  state.counters["GFLOP_per_s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(form == 1 ? "oneDNN forms" : fmt::format("embeval kernel, {} products", bf16_attention_name(kind)));
}

// fp32 attention on the same shapes: embeval's FMA kernel (form 0, skipped
// without AVX512-BF16) or the oneDNN forms (form 1,
// EMBEVAL_NO_FP32_ATTENTION=1), both through fused_qkv_attention.
void BM_attention_fp32(benchmark::State& state) {
  const int64_t t = state.range(0), heads = 12, h = heads * 64, b = 32;
  const bool own = state.range(1) == 0;
  if (own && !fp32_attention_available()) {
    state.SkipWithError("no fp32 attention kernel on this CPU");
    return;
  }
  at::set_num_threads(2);
  at::manual_seed(2);
  at::Tensor qkv = at::randn({b, t, 3 * h});
  at::Tensor keep = at::ones({b, t});
  keep.narrow(1, t / 2, t / 2).narrow(0, 0, b / 2).zero_();  // half the rows half padding
  at::Tensor mask = (1.0 - keep).mul_(-3.4028234663852886e38).view({b, 1, 1, t});
  if (!own) setenv("EMBEVAL_NO_FP32_ATTENTION", "1", 1);
  for (auto _ : state) benchmark::DoNotOptimize(fused_qkv_attention(qkv, mask, heads).data_ptr());
  unsetenv("EMBEVAL_NO_FP32_ATTENTION");
  const double flops = 4.0 * b * heads * t * t * 64;
  state.counters["GFLOP_per_s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(own ? "embeval FMA kernel" : "oneDNN forms");
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"shape", "seq", "threads", "bf16"});
  for (int shape = 0; shape < 3; ++shape)
    for (int64_t seq : {32, 128, 512})
      for (int threads : {1, 2})
        for (int bf16 : {0, 1}) b->Args({shape, seq, threads, bf16});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
}

}  // namespace

// bf16 add + LayerNorm (runners/kernels/layer_norm.h) over bert-base's
// 4,096 x 768 activations, 2 threads: in calls of `rows` rows (4,096: one
// call, from memory; 256: 16 calls on the same rows, in L2), in place over
// x as the model calls it.
void BM_add_layer_norm(benchmark::State& state) {
  const int64_t rows = state.range(0), h = 768, calls = 4096 / rows;
  at::set_num_threads(2);
  at::manual_seed(3);
  const at::Tensor x = at::randn({rows, h}).to(at::kBFloat16), r = at::randn({rows, h}).to(at::kBFloat16);
  const at::Tensor w = at::rand({h}) + 0.5, b = at::randn({h});
  for (auto _ : state)
    for (int64_t c = 0; c < calls; ++c) benchmark::DoNotOptimize(add_layer_norm(x, r, w, b, 1e-12).data_ptr());
}

BENCHMARK(BM_gemm_peak)
    ->ArgNames({"threads", "kind"})
    ->ArgsProduct({{1, 2}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK(BM_encoder)->Apply(args);
BENCHMARK(BM_add_layer_norm)->ArgName("rows")->Arg(4096)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_attention)
    ->ArgNames({"seq", "whole"})
    ->ArgsProduct({{16, 512, 4096}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

BENCHMARK(BM_attention_bf16)
    ->ArgNames({"seq", "form"})
    ->ArgsProduct({{128, 512}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);
BENCHMARK(BM_attention_fp32)
    ->ArgNames({"seq", "form"})
    ->ArgsProduct({{128, 512}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

int main(int argc, char** argv) {
  tune_malloc_for_inference();
  if (at::hasCUDA()) {  // registered only where they can run: CPU-only runs list no skipped entries
    auto* peak = benchmark::RegisterBenchmark("BM_gemm_peak_cuda", BM_gemm_peak_cuda);
    peak->ArgName("dtype")->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
    auto* enc = benchmark::RegisterBenchmark("BM_encoder_cuda", BM_encoder_cuda);
    enc->ArgNames({"shape", "seq", "dtype"})
        ->ArgsProduct({{0, 1, 2}, {32, 128, 512}, {0, 1, 2}})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(1.0);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
