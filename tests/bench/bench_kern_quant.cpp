// Quantized Linear kernels against the fp32 Linear they replace, side by
// side in one process at bert-base's shapes (rows = batch 32 x seq 128 =
// 4096; 768 -> 768, 768 -> 3072, 3072 -> 768) and at batch-1 shapes (rows
// 16). Counters: G(FL)OP/s = 2 rows in out per second, the same count for
// every kernel, so the ratio of two rows is their speed ratio. The fp32 row
// is this run's reference peak.
//
//   BM_linear/kind:0  PackedLinear fp32 (oneDNN where built with it)
//   BM_linear/kind:1  PackedLinear bf16
//   BM_linear/kind:2  Int8Linear W8A8: per-token activation quantization,
//                     s8 x s8 -> s32 GEMM, scales + bias epilogue
//   BM_linear/kind:3  WeightOnlyLinear int8, per output channel
//   BM_linear/kind:4  WeightOnlyLinear int4, groups of 128 with zero points
//   BM_linear/kind:5  Int8Linear W8A8 with bf16 input and output (a bf16 model)
//   BM_linear/kind:6  WeightOnlyLinear int4 g128 with bf16 input and output
//   BM_linear/kind:7, 8  kinds 2 and 5 with BERT's GELU fused (the FFN-in layer)
//   BM_linear/kind:9  kind 1 with BERT's GELU (the bf16 FFN-in layer; on AMX
//                     embeval's kernel, EMBEVAL_NO_AMX_BF16_GEMM=1 oneDNN's
//                     product and the GELU pass)
//   BM_linear/kind:10 WeightOnlyLinear int8, groups of 128 with zero points
//                     (on VNNI without AMX: runners/kernels/vnni_group_gemm.h)
//   BM_quantize_per_token  the activation step alone
//
// The label names the kernel that ran (an AVX2-only CPU runs W8A8 as
// fp32-emulated: see runners/kernels/int8_linear.h).
//
// Run: ./build/tests/bench_kern_quant --benchmark_filter=BM_linear
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "runners/kernels/int8_linear.h"
#include "runners/kernels/packed_linear.h"
#include "runners/kernels/weight_only_linear.h"
#include "runners/torch_runtime.h"

using namespace embeval;

namespace {

struct Shape {
  int64_t rows, in, out;
};
// 0-2: a batch of 32 texts of 128 tokens; 3-4: one 16-token text; 5-7: one
// token (batch-1 decode-like latency); 8-9: 32 and 64 rows, around where the
// weight-only layer switches from its small-batch kernel to tiles.
const Shape SHAPES[] = {{4096, 768, 768}, {4096, 768, 3072}, {4096, 3072, 768}, {16, 768, 768}, {16, 768, 3072},
                        {1, 768, 768},    {1, 768, 3072},    {1, 3072, 768},    {32, 768, 3072}, {64, 768, 3072}};

void BM_linear(benchmark::State& state) {
  const Shape s = SHAPES[state.range(0)];
  const int kind = static_cast<int>(state.range(1));
  at::set_num_threads(static_cast<int>(state.range(2)));
  at::manual_seed(0);
  at::Tensor w = at::randn({s.out, s.in}) / 30, b = at::randn({s.out}), x = at::randn({s.rows, s.in});
  std::unique_ptr<PackedLinear> fp;
  std::unique_ptr<Int8Linear> q8;
  std::unique_ptr<WeightOnlyLinear> wo;
  std::string label;
  if (kind == 3 || kind == 4 || kind == 6 || kind == 10) {
    const int bits = kind == 3 || kind == 10 ? 8 : 4;
    const int64_t group = kind == 3 ? s.in : 128, groups = s.in / group;
    at::Tensor wg = w.view({s.out, groups, group});
    at::Tensor mn = wg.amin(2, true), mx = wg.amax(2, true);
    const double maxq = (1 << bits) - 1;
    at::Tensor scale = (mx - mn).clamp_min(1e-5) / maxq, zero = (-at::round(mn / scale)).clamp(0, maxq);
    at::Tensor codes = (at::round(wg / scale) + zero).clamp(0, maxq).view({s.out, s.in}).to(at::kByte);
    wo = std::make_unique<WeightOnlyLinear>(codes, bits, scale.view({s.out, groups}), zero.view({s.out, groups}).to(at::kInt),
                                            group, at::Tensor(), b, LinearActivation::none);
    label = "wo " + wo->implementation();
    if (kind == 6) {
      x = x.to(at::kBFloat16);
      label = "wo bf16 " + wo->bf16_implementation();
    }
  } else if (kind == 2 || kind == 5 || kind == 7 || kind == 8) {
    at::Tensor sw = w.abs().amax(1).clamp_min(1e-5) / 127;
    at::Tensor wq = at::round(w / sw.unsqueeze(1)).clamp(-127, 127).to(at::kChar);
    q8 = std::make_unique<Int8Linear>(wq, sw, b, kind >= 7 ? LinearActivation::gelu_erf : LinearActivation::none);
    label = "w8a8 " + q8->implementation();
    if (kind == 5 || kind == 8) {
      x = x.to(at::kBFloat16);
      label = "w8a8 bf16 in/out " + q8->implementation();
    }
    if (kind >= 7) label += " + gelu";
  } else {
    const at::ScalarType t = kind == 1 || kind == 9 ? at::kBFloat16 : at::kFloat;
    fp = std::make_unique<PackedLinear>(w.to(t), b.to(t), kind == 9 ? LinearActivation::gelu_erf : LinearActivation::none);
    x = x.to(t);
    label = std::string(t == at::kBFloat16 ? "bf16 " : "fp32 ") + fp->implementation();
  }
  for (auto _ : state) {
    at::Tensor y = wo ? (*wo)(x) : q8 ? (*q8)(x) : (*fp)(x);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["GOP_per_s"] = benchmark::Counter(2.0 * s.rows * s.in * s.out * double(state.iterations()) / 1e9,
                                                   benchmark::Counter::kIsRate);
  state.SetLabel(label);
}

// Tile dequantisation alone: the whole [768, 768] weight, int8 (range 0) or int4 in groups of 128 (range 1).
void BM_dequantize(benchmark::State& state) {
  const int bits = state.range(0) == 0 ? 8 : 4;
  const int64_t n = 768, group = bits == 8 ? n : 128, groups = n / group;
  at::Tensor codes = at::randint(0, 1 << bits, {n, n}, at::kLong).to(at::kByte);
  WeightOnlyLinear layer(codes, bits, at::rand({n, groups}), at::zeros({n, groups}, at::kInt), group, at::Tensor(),
                         at::Tensor(), LinearActivation::none);
  for (auto _ : state) benchmark::DoNotOptimize(layer.dequantized_weight().data_ptr());
  state.counters["weights_per_s"] = benchmark::Counter(double(n * n) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_quantize_per_token(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  at::Tensor x = at::randn({4096, 768});
  for (auto _ : state) {
    auto q = quantize_per_token(x, at::Tensor());
    benchmark::DoNotOptimize(q.first.data_ptr());
  }
  state.counters["GB_per_s_in"] = benchmark::Counter(4.0 * x.numel() * double(state.iterations()) / 1e9,
                                                     benchmark::Counter::kIsRate);
}

// The epilogue's activation alone on one block of 16 rows of 3072 (in cache): elements per second.
void BM_activation(benchmark::State& state) {
  const auto act = static_cast<LinearActivation>(state.range(0));
  at::Tensor y = at::randn({16, 3072});
  for (auto _ : state) {
    apply_activation_in_place(y.data_ptr<float>(), y.numel(), act);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["elements_per_s"] = benchmark::Counter(double(y.numel()) * state.iterations(), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_activation)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_linear)
    ->ArgNames({"shape", "kind", "threads"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);
BENCHMARK(BM_dequantize)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_quantize_per_token)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  tune_malloc_for_inference();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
