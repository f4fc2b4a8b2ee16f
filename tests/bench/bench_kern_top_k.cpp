// Exact top-k by similarity (tasks/metrics/top_k.h) at retrieval scale:
// 1k queries x 100k documents x 768 dims, random unit vectors, k = 10 and
// 1000, against a plain at::mm of the same shape (the machine's GEMM
// reference), at 1 and 2 ATen threads. Both report GFLOP/s = 2*Q*N*D / time,
// so the kernel's fraction of GEMM speed reads off side by side.
//
// Before anything is timed the kernel's answer is checked on a small case
// against an fp64 brute force (chunked, so the merge path runs); a wrong
// answer exits non-zero without running the benchmarks.
//
// Run: ./build/tests/bench_kern_top_k [--benchmark_filter=...]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <vector>

#include "tasks/metrics/top_k.h"

using namespace embeval::metrics;

namespace {

constexpr int64_t N_QUERIES = 1000, N_CORPUS = 100000, DIM = 768;

std::vector<float> random_unit_rows(int64_t rows, int64_t dim, unsigned seed) {
  std::vector<float> v(static_cast<size_t>(rows * dim));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = v.data() + r * dim;
    double norm = 0;
    for (int64_t d = 0; d < dim; ++d) row[d] = normal(rng), norm += double(row[d]) * row[d];
    for (int64_t d = 0; d < dim; ++d) row[d] = static_cast<float>(row[d] / std::sqrt(norm));
  }
  return v;
}

// The benchmark data, made once (about 300 MB).
const std::vector<float>& queries() {
  static std::vector<float> q = random_unit_rows(N_QUERIES, DIM, 1);
  return q;
}
const std::vector<float>& corpus() {
  static std::vector<float> c = random_unit_rows(N_CORPUS, DIM, 2);
  return c;
}

// Small case against fp64: every returned score equals the fp64 score of its
// document and the j-th best fp64 score, within 1e-5 (float32 rounding).
bool verify_small_case() {
  const int64_t nq = 50, nc = 3001, dim = 96;
  std::vector<float> q = random_unit_rows(nq, dim, 3), c = random_unit_rows(nc, dim, 4);
  for (int64_t i = 0; i < 40; ++i)  // exact duplicates: real ties across chunks
    std::copy(c.begin() + 7 * dim, c.begin() + 8 * dim, c.begin() + (100 + 61 * i) * dim);
  for (int64_t k : {10, 1000}) {
    TopKOptions opt;
    opt.corpus_chunk = 1000;
    opt.query_chunk = 16;
    TopK top = top_k_similarity(q.data(), nq, c.data(), nc, dim, k, opt);
    for (int64_t i = 0; i < nq; ++i) {
      std::vector<double> exact(static_cast<size_t>(nc));
      for (int64_t j = 0; j < nc; ++j) {
        double dot = 0, na = 0, nb = 0;
        for (int64_t d = 0; d < dim; ++d) {
          double a = q[i * dim + d], b = c[j * dim + d];
          dot += a * b, na += a * a, nb += b * b;
        }
        exact[j] = dot / (std::sqrt(na) * std::sqrt(nb));
      }
      std::vector<double> sorted = exact;
      std::sort(sorted.begin(), sorted.end(), std::greater<double>());
      for (int64_t j = 0; j < top.k; ++j) {
        const float s = top.scores[i * top.k + j];
        const int64_t idx = top.index[i * top.k + j];
        if (std::fabs(s - exact[idx]) > 1e-5 || std::fabs(s - sorted[j]) > 1e-5) {
          std::fprintf(stderr,
                       "bench_kern_top_k: wrong answer for k=%ld query %ld rank %ld: %.8f (doc %ld, fp64 %.8f), "
                       "fp64 rank score %.8f\n",
                       long(k), long(i), long(j), s, long(idx), exact[idx], sorted[j]);
          return false;
        }
      }
    }
  }
  std::printf("bench_kern_top_k: small case (50 x 3001 x 96, k = 10 and 1000, chunked) matches fp64 within 1e-5\n");
  return true;
}

// CPU seconds of the whole process (every ATen thread). The build machine is
// shared, so wall time alone overstates a kernel's cost when others run.
double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

void set_counters(benchmark::State& state, double cpu_seconds) {
  const double gflop = 2.0 * N_QUERIES * N_CORPUS * DIM * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(gflop * state.iterations(), benchmark::Counter::kIsRate);
  // GFLOP per process-CPU-second: the rate if each thread had a core to itself.
  state.counters["GFLOP/cpu_s"] = gflop * state.iterations() / cpu_seconds;
}

// args: k, threads
void BM_top_k(benchmark::State& state) {
  const int64_t k = state.range(0);
  at::set_num_threads(static_cast<int>(state.range(1)));
  const auto& q = queries();
  const auto& c = corpus();
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    TopK top = top_k_similarity(q.data(), N_QUERIES, c.data(), N_CORPUS, DIM, k);
    benchmark::DoNotOptimize(top.index.data());
  }
  set_counters(state, process_cpu_seconds() - cpu0);
}

// args: threads. The same product the kernel computes, into a preallocated output.
void BM_gemm_reference(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor q = at::from_blob(const_cast<float*>(queries().data()), {N_QUERIES, DIM}, f32);
  at::Tensor c = at::from_blob(const_cast<float*>(corpus().data()), {N_CORPUS, DIM}, f32);
  at::Tensor out = at::empty({N_QUERIES, N_CORPUS}, f32);
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    at::mm_out(out, q, c.t());
    benchmark::DoNotOptimize(out.data_ptr<float>());
  }
  set_counters(state, process_cpu_seconds() - cpu0);
}

BENCHMARK(BM_gemm_reference)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_top_k)
    ->ArgNames({"k", "threads"})
    ->Args({10, 1})
    ->Args({10, 2})
    ->Args({1000, 1})
    ->Args({1000, 2})
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// CUDA (registered only where ATen has a GPU): the kernel takes host
// vectors, so its time includes copying the corpus to the device; the GEMM
// reference keeps both operands on the device. args: k.
void BM_top_k_cuda(benchmark::State& state) {
  TopKOptions opt;
  opt.cuda = true;
  const auto& q = queries();
  const auto& c = corpus();
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    TopK top = top_k_similarity(q.data(), N_QUERIES, c.data(), N_CORPUS, DIM, state.range(0), opt);
    benchmark::DoNotOptimize(top.index.data());
  }
  set_counters(state, process_cpu_seconds() - cpu0);
}

void BM_gemm_reference_cuda(benchmark::State& state) {
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor q = at::from_blob(const_cast<float*>(queries().data()), {N_QUERIES, DIM}, f32).to(at::kCUDA);
  at::Tensor c = at::from_blob(const_cast<float*>(corpus().data()), {N_CORPUS, DIM}, f32).to(at::kCUDA);
  at::Tensor out = at::empty({N_QUERIES, N_CORPUS}, q.options());
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    at::mm_out(out, q, c.t());
    benchmark::DoNotOptimize(out.sum().item<float>());  // .item() waits for the GPU
  }
  set_counters(state, process_cpu_seconds() - cpu0);
}

}  // namespace

int main(int argc, char** argv) {
  if (!verify_small_case()) return 1;
  if (at::hasCUDA()) {
    benchmark::RegisterBenchmark("BM_gemm_reference_cuda", BM_gemm_reference_cuda)
        ->Iterations(20)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("BM_top_k_cuda", BM_top_k_cuda)
        ->ArgName("k")->Arg(10)->Arg(1000)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
