#include "tasks/metrics/retrieval_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>

namespace embeval::metrics {

void trec_eval_sort(std::vector<ScoredDoc>& run) {
  // form_res_rels.c comp_sim_docno: sim descending, then strcmp(p2, p1).
  std::sort(run.begin(), run.end(), [](const ScoredDoc& a, const ScoredDoc& b) {
    if (a.score != b.score) return a.score > b.score;
    return std::strcmp(a.id.c_str(), b.id.c_str()) > 0;
  });
}

JudgedRun judge_run(const std::vector<ScoredDoc>& ranked, const std::unordered_map<std::string, int>& qrels) {
  JudgedRun r;
  r.rel.reserve(ranked.size());
  for (const ScoredDoc& d : ranked) {
    auto it = qrels.find(d.id);
    r.rel.push_back(it != qrels.end() && it->second > 0 ? it->second : 0);
  }
  for (const auto& [id, rel] : qrels)
    if (rel > 0) r.ideal.push_back(rel);
  std::sort(r.ideal.begin(), r.ideal.end(), std::greater<int>());
  return r;
}

// m_ndcg_cut.c: DCG and ideal DCG both cut at k, gain / log2(rank + 1);
// an ideal DCG of 0 leaves the (zero) DCG as it is.
double ndcg_cut(const JudgedRun& r, int64_t k) {
  double dcg = 0.0, ideal = 0.0;
  const int64_t n = std::min<int64_t>(k, static_cast<int64_t>(r.rel.size()));
  for (int64_t i = 0; i < n; ++i)
    if (r.rel[i] > 0) dcg += r.rel[i] / std::log2(static_cast<double>(i + 2));
  const int64_t m = std::min<int64_t>(k, static_cast<int64_t>(r.ideal.size()));
  for (int64_t i = 0; i < m; ++i) ideal += r.ideal[i] / std::log2(static_cast<double>(i + 2));
  return ideal > 0.0 ? dcg / ideal : dcg;
}

// m_map_cut.c: sum of precision at each relevant rank within k, over all relevant.
double map_cut(const JudgedRun& r, int64_t k) {
  if (r.ideal.empty()) return 0.0;
  double sum = 0.0;
  int64_t rel_so_far = 0;
  const int64_t n = std::min<int64_t>(k, static_cast<int64_t>(r.rel.size()));
  for (int64_t i = 0; i < n; ++i) {
    if (r.rel[i] > 0) {
      ++rel_so_far;
      sum += static_cast<double>(rel_so_far) / static_cast<double>(i + 1);
    }
  }
  return sum / static_cast<double>(r.ideal.size());
}

static int64_t relevant_in_top(const JudgedRun& r, int64_t k) {
  int64_t count = 0;
  const int64_t n = std::min<int64_t>(k, static_cast<int64_t>(r.rel.size()));
  for (int64_t i = 0; i < n; ++i) count += r.rel[i] > 0;
  return count;
}

double recall_at(const JudgedRun& r, int64_t k) {
  if (r.ideal.empty()) return 0.0;
  return static_cast<double>(relevant_in_top(r, k)) / static_cast<double>(r.ideal.size());
}

double precision_at(const JudgedRun& r, int64_t k) {
  return static_cast<double>(relevant_in_top(r, k)) / static_cast<double>(k);
}

double mrr_at(const JudgedRun& r, int64_t k) {
  const int64_t n = std::min<int64_t>(k, static_cast<int64_t>(r.rel.size()));
  for (int64_t i = 0; i < n; ++i)
    if (r.rel[i] > 0) return 1.0 / static_cast<double>(i + 1);
  return 0.0;
}

double python_mean(const std::vector<double>& values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0.0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double python_round(double x, int digits) {
  if (!std::isfinite(x)) return x;
  // glibc prints the exact binary value correctly rounded (half to even on
  // exact ties), which is what CPython's round() does via dtoa.
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, x);
  return std::strtod(buf, nullptr);
}

}  // namespace embeval::metrics
