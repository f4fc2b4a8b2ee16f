// Reranking, as MTEB 1.39.7's RerankingEvaluator scores it: each query's
// positives and negatives are scored against the query embedding, then
// average precision (sklearn's average_precision_score), MRR@10 and
// recall@10 per query, averaged with np.mean, plus the nAUC abstention metric
// of each. Queries without a positive or without a negative are skipped, as
// MTEB does.
//
// Equal scores keep the candidates' order (positives first) when ranking for
// MRR and recall; MTEB uses torch.argsort, whose tie order is unspecified.
// recall_at_10 is the fraction of the query's positives ranked in the top 10.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "datasets/task_data.h"
#include "harness/error.h"
#include "harness/task_type.h"
#include "tasks/metrics/average_precision.h"
#include "tasks/metrics/nauc.h"
#include "tasks/metrics/numpy_sum.h"
#include "tasks/metrics/top_k.h"

namespace embeval {
namespace {

constexpr int64_t MRR_AT_K = 10;
constexpr int64_t RECALL_AT_K = 10;
// Per-query metrics in MTEB's key order; nAUC keys use the same names.
const char* const METRICS[] = {"map", "mrr", "recall_at_10"};
const char* const CONFIDENCE_NAMES[] = {"max", "std", "diff1"};

nlohmann::ordered_json number_or_null(double x) {
  if (std::isnan(x)) return nullptr;
  return x;
}

bool usable(const data::RerankingSample& s) { return !s.positive.empty() && !s.negative.empty(); }

class RerankingTask : public TaskType {
 public:
  std::string name() const override { return "Reranking"; }

  std::vector<std::string> metric_names() const override {
    std::vector<std::string> names(std::begin(METRICS), std::end(METRICS));
    for (const char* m : METRICS)
      for (const char* c : CONFIDENCE_NAMES) names.push_back(fmt::format("nAUC_{}_{}", m, c));
    return names;
  }

  std::string describe(const data::TaskSpec& task) const override {
    std::vector<data::RerankingSample> samples = data::load_reranking(task);
    size_t queries = 0, candidates = 0;
    for (const auto& s : samples) {
      if (!usable(s)) continue;
      ++queries;
      candidates += s.positive.size() + s.negative.size();
    }
    return fmt::format("{} queries, {} candidates", queries, candidates);
  }

  nlohmann::ordered_json evaluate(const data::TaskSpec& task, EvalContext& ctx) const override {
    std::vector<data::RerankingSample> samples = data::load_reranking(task);
    samples.erase(std::remove_if(samples.begin(), samples.end(), [](const auto& s) { return !usable(s); }),
                  samples.end());
    if (samples.empty())
      fail("{}: no query has both a positive and a negative; expected at least one such query",
           (task.dir / (task.eval_split + ".jsonl")).string());

    metrics::TopKScore score = metrics::TOP_K_SCORE_COSINE;
    if (ctx.similarity() == SIMILARITY_DOT)
      score = metrics::TOP_K_SCORE_DOT;
    else if (ctx.similarity() != SIMILARITY_COSINE)
      fail("{}: reranking does not support {} similarity; expected cosine or dot", task.name,
           similarity_name(ctx.similarity()));

    std::vector<std::string> query_texts, doc_texts;
    for (const auto& s : samples) {
      query_texts.push_back(s.query);
      doc_texts.insert(doc_texts.end(), s.positive.begin(), s.positive.end());
      doc_texts.insert(doc_texts.end(), s.negative.begin(), s.negative.end());
    }
    Matrix queries = ctx.encode(query_texts, ROLE_QUERY, "query");
    Matrix docs = ctx.encode(doc_texts, ROLE_PASSAGE, "candidate");

    std::vector<double> ap, mrr, recall;
    std::vector<metrics::Confidence> confidence;
    int64_t offset = 0;
    for (size_t i = 0; i < samples.size(); ++i) {
      const int64_t n_pos = static_cast<int64_t>(samples[i].positive.size());
      const int64_t n = n_pos + static_cast<int64_t>(samples[i].negative.size());
      // One query against its own candidates, as MTEB's cos_sim(query_emb, docs_emb).
      std::vector<float> s32 =
          metrics::similarity_scores(queries.row(static_cast<int64_t>(i)), 1, docs.row(offset), n, docs.cols, score);
      offset += n;
      std::vector<double> s(s32.begin(), s32.end());
      std::vector<int> label(static_cast<size_t>(n), 0);
      std::fill(label.begin(), label.begin() + n_pos, 1);

      std::vector<int64_t> rank(static_cast<size_t>(n));
      std::iota(rank.begin(), rank.end(), 0);
      std::stable_sort(rank.begin(), rank.end(), [&](int64_t a, int64_t b) { return s[a] > s[b]; });
      double rr = 0.0;
      for (int64_t r = 0; r < std::min(MRR_AT_K, n); ++r) {
        if (label[rank[r]]) {
          rr = 1.0 / static_cast<double>(r + 1);
          break;
        }
      }
      int64_t hits = 0;
      for (int64_t r = 0; r < std::min(RECALL_AT_K, n); ++r) hits += label[rank[r]];

      ap.push_back(metrics::average_precision(s.data(), label.data(), s.size()));
      mrr.push_back(rr);
      recall.push_back(static_cast<double>(hits) / static_cast<double>(n_pos));
      confidence.push_back(metrics::confidence_scores(s.data(), s.size()));
    }

    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    const std::vector<double>* values[] = {&ap, &mrr, &recall};
    for (size_t m = 0; m < 3; ++m)
      out[METRICS[m]] = number_or_null(metrics::numpy_mean(values[m]->data(), values[m]->size()));
    for (size_t m = 0; m < 3; ++m) {
      metrics::NaucByConfidence n = metrics::nauc_by_confidence(confidence, *values[m]);
      const double by_conf[] = {n.max, n.std, n.diff1};
      for (size_t c = 0; c < 3; ++c)
        out[fmt::format("nAUC_{}_{}", METRICS[m], CONFIDENCE_NAMES[c])] = number_or_null(by_conf[c]);
    }
    return out;
  }
};

}  // namespace

EMBEVAL_REGISTER_TASK_TYPE(RerankingTask);

}  // namespace embeval
