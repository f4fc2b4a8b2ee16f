#pragma once
// Per-query retrieval measures exactly as MTEB 1.39.7 gets them: ndcg_cut,
// map_cut, recall and P from pytrec_eval (trec_eval 9.0.8 code, relevance
// level 1, no judged-docs-only), and mrr from MTEB's own utils.mrr.
//
// trec_eval semantics worth knowing:
// - the run is ranked by score descending, ties by document id descending;
// - a retrieved document without a judgement counts as not relevant, and so
//   does one judged 0 or negative; a judgement >= 1 is relevant, and nDCG's
//   gain is the judgement itself (2 counts twice as much as 1);
// - a cutoff k beyond the run's length is treated as if non-relevant
//   documents filled the rest (P@k still divides by k);
// - a query without any positive judgement scores 0 on every measure (MTEB
//   1.39.7 keeps such queries in the average);
// - nDCG discounts rank r (1-based) by log2(r + 1); the ideal ranking uses
//   every positive judgement of the query, retrieved or not.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace embeval::metrics {

struct ScoredDoc {
  std::string id;
  double score;
};

// Ranks a query's run as trec_eval does: score descending, then id
// descending (byte-wise, i.e. strcmp).
void trec_eval_sort(std::vector<ScoredDoc>& run);

// A ranked run reduced to what the measures read.
struct JudgedRun {
  std::vector<int> rel;    // judgement of each retrieved document in rank order; 0 if unjudged or <= 0
  std::vector<int> ideal;  // every positive judgement of the query, largest first
};
JudgedRun judge_run(const std::vector<ScoredDoc>& ranked, const std::unordered_map<std::string, int>& qrels);

double ndcg_cut(const JudgedRun& r, int64_t k);
double map_cut(const JudgedRun& r, int64_t k);
double recall_at(const JudgedRun& r, int64_t k);
double precision_at(const JudgedRun& r, int64_t k);
// Reciprocal rank of the first relevant document within the first k, else 0.
double mrr_at(const JudgedRun& r, int64_t k);

// Python's sum(values) / len(values): left to right, as MTEB averages over queries.
double python_mean(const std::vector<double>& values);
// Python's round(x, digits): the exact binary value rounded half to even.
double python_round(double x, int digits);

}  // namespace embeval::metrics
