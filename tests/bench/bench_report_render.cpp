// Report rendering at leaderboard scale: a database of N models x 30 tasks
// (tests/report_fixture.h's synthetic_db; Retrieval results carry ~70
// metrics like the real evaluator), loaded once, then the leaderboard model
// and each printer timed on their own. The goal is all formats for 50 models
// in well under a second.
//
// Before anything is timed the answer is checked: the leaderboard must have
// N rows and 30 task columns, and every printer must show every row (the
// HTML summary has N rows, the CSV one line per model x task x metric);
// a wrong answer exits non-zero without running the benchmarks.
//
// Run: ./build/tests/bench_report_render [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "harness/result_store.h"
#include "reports/csv_report.h"
#include "reports/html_report.h"
#include "reports/leaderboard.h"
#include "reports/markdown_report.h"
#include "tests/report_fixture.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

constexpr int N_TASKS = 30;

struct Data {
  std::vector<StoredResult> results;
  std::vector<StoredRun> runs;
  reports::Leaderboard board;
};

const Data& data(int n_models) {
  static std::map<int, Data> cache;
  auto it = cache.find(n_models);
  if (it != cache.end()) return it->second;
  fs::path db = fs::temp_directory_path() / ("embeval_bench_report_" + std::to_string(n_models) + ".sqlite");
  test::synthetic_db(db, n_models, N_TASKS);
  Data d;
  {
    auto store = ResultStore::open_existing(db);
    d.results = store->latest_results();
    d.runs = store->runs();
  }
  fs::remove(db);
  fs::remove(db.string() + "-wal");
  fs::remove(db.string() + "-shm");
  d.board = reports::build_leaderboard(d.results, d.runs);
  return cache.emplace(n_models, std::move(d)).first->second;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = 0; (p = s.find(what, p)) != std::string::npos; p += what.size()) ++n;
  return n;
}

bool check(int n_models) {
  const Data& d = data(n_models);
  const auto& lb = d.board;
  bool ok = lb.rows.size() == size_t(n_models) && lb.tasks.size() == size_t(N_TASKS);
  std::string html = reports::html_report(lb, {});
  size_t s0 = html.find("id=\"t-summary\""), s1 = html.find("</table>", s0);
  ok &= count(html.substr(s0, s1 - s0), "<tr data-model") == size_t(n_models);
  // synthetic_db: tasks t % 6 == 0 carry 70 metrics + "main", the others 10 + "main".
  size_t metrics_per_model = 0;
  for (int t = 0; t < N_TASKS; ++t) metrics_per_model += (t % 6 == 0 ? 70 : 10) + 1;
  std::string csv = reports::csv_report(lb);
  ok &= count(csv, "\r\n") == 1 + size_t(n_models) * metrics_per_model;
  std::string md = reports::markdown_report(lb, "bench");
  ok &= md.find("## Summary") != std::string::npos && count(md, "\n| ") > size_t(n_models);
  if (!ok) std::fprintf(stderr, "bench_report_render: wrong report for %d models\n", n_models);
  return ok;
}

void BM_leaderboard(benchmark::State& state) {
  const Data& d = data(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(reports::build_leaderboard(d.results, d.runs));
}

void BM_markdown(benchmark::State& state) {
  const Data& d = data(static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) bytes += reports::markdown_report(d.board, "bench").size();
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_html(benchmark::State& state) {
  const Data& d = data(static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) bytes += reports::html_report(d.board, {}).size();
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_csv(benchmark::State& state) {
  const Data& d = data(static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) bytes += reports::csv_report(d.board).size();
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

}  // namespace

BENCHMARK(BM_leaderboard)->Arg(10)->Arg(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_markdown)->Arg(10)->Arg(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_html)->Arg(10)->Arg(50)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_csv)->Arg(10)->Arg(50)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  if (!check(10) || !check(50)) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
