// Retrieval, as MTEB 1.39.7 scores it (AbsTaskRetrieval._evaluate_subset,
// RetrievalEvaluator with DenseRetrievalExactSearch): queries and corpus are
// encoded, each query keeps its 1000 best documents by exact search, and the
// runs are scored by pytrec_eval (ndcg_cut, map_cut, recall, P at k = 1, 3,
// 5, 10, 20, 100, 1000; mean over queries rounded to 5 decimals), by MTEB's
// mrr (mean not rounded) and by the nAUC abstention metrics of each.
//
// As in MTEB 1.39.7, only queries named in the qrels are evaluated, and a
// query whose judgements are all 0 stays in the averages with 0 everywhere.
// Runs are ranked the trec_eval way (score, then id descending) for every
// measure, mrr included; MTEB's own mrr orders exact ties by the retrieval
// heap's order instead, which no other implementation can reproduce.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "datasets/task_data.h"
#include "harness/error.h"
#include "harness/task_type.h"
#include "tasks/metrics/nauc.h"
#include "tasks/metrics/retrieval_metrics.h"
#include "tasks/metrics/top_k.h"

namespace embeval {
namespace {

const int64_t K_VALUES[] = {1, 3, 5, 10, 20, 100, 1000};
constexpr int64_t TOP_K = 1000;  // MTEB retrieves max(k_values) documents per query

// Measures in MTEB's key order. pytrec_eval's are rounded by MTEB, its own mrr is not.
struct Measure {
  const char* name;
  double (*per_query)(const metrics::JudgedRun&, int64_t);
  bool rounded;
};
const Measure MEASURES[] = {
    {"ndcg", metrics::ndcg_cut, true},          {"map", metrics::map_cut, true}, {"recall", metrics::recall_at, true},
    {"precision", metrics::precision_at, true}, {"mrr", metrics::mrr_at, false},
};
const char* const CONFIDENCE_NAMES[] = {"max", "std", "diff1"};

nlohmann::ordered_json number_or_null(double x) {
  if (std::isnan(x)) return nullptr;
  return x;
}

metrics::TopKScore top_k_score(const EvalContext& ctx, const data::TaskSpec& task) {
  switch (ctx.similarity()) {
    case SIMILARITY_COSINE: return metrics::TOP_K_SCORE_COSINE;
    case SIMILARITY_DOT: return metrics::TOP_K_SCORE_DOT;
    default:
      fail("{}: retrieval does not support {} similarity; expected cosine or dot (as MTEB's exact search)", task.name,
           similarity_name(ctx.similarity()));
  }
}

class RetrievalTask : public TaskType {
 public:
  std::string name() const override { return "Retrieval"; }

  std::vector<std::string> metric_names() const override {
    std::vector<std::string> names;
    for (const Measure& m : MEASURES)
      for (int64_t k : K_VALUES) names.push_back(fmt::format("{}_at_{}", m.name, k));
    for (const Measure& m : MEASURES)
      for (int64_t k : K_VALUES)
        for (const char* c : CONFIDENCE_NAMES) names.push_back(fmt::format("nauc_{}_at_{}_{}", m.name, k, c));
    return names;
  }

  std::string describe(const data::TaskSpec& task) const override {
    data::RetrievalData d = data::load_retrieval(task);
    return fmt::format("{} queries, {} documents", d.query_ids.size(), d.corpus_ids.size());
  }

  nlohmann::ordered_json evaluate(const data::TaskSpec& task, EvalContext& ctx) const override {
    data::RetrievalData d = data::load_retrieval(task);
    metrics::TopKOptions options;
    options.score = top_k_score(ctx, task);

    // The corpus is encoded in id-descending order: the top-k kernel breaks
    // ties by lower row, so a tie at the 1000th place keeps the larger id, as
    // MTEB's heap of (score, id) does, and agrees with trec_eval's ranking.
    std::vector<size_t> order(d.corpus_ids.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return std::strcmp(d.corpus_ids[a].c_str(), d.corpus_ids[b].c_str()) > 0; });
    std::vector<std::string> corpus_texts;
    corpus_texts.reserve(order.size());
    for (size_t i : order) corpus_texts.push_back(std::move(d.corpus_texts[i]));

    Matrix queries = ctx.encode(d.query_texts, ROLE_QUERY, "query");
    Matrix corpus = ctx.encode(corpus_texts, ROLE_PASSAGE, "corpus");
    metrics::TopK top = metrics::top_k_similarity(queries.values.data(), queries.rows, corpus.values.data(),
                                                  corpus.rows, queries.cols, TOP_K, options);
    EMBEVAL_ASSERT(top.rows == static_cast<int64_t>(d.query_ids.size()));

    const size_t n_measures = std::size(MEASURES), n_k = std::size(K_VALUES);
    // per_query[m][k][query]
    std::vector<std::vector<std::vector<double>>> per_query(n_measures, std::vector<std::vector<double>>(n_k));
    std::vector<metrics::Confidence> confidence;
    std::vector<metrics::ScoredDoc> run;
    std::vector<double> run_scores;
    for (int64_t qi = 0; qi < top.rows; ++qi) {
      const std::string& qid = d.query_ids[static_cast<size_t>(qi)];
      run.clear();
      run_scores.clear();
      for (int64_t j = 0; j < top.k; ++j) {
        const std::string& doc = d.corpus_ids[order[static_cast<size_t>(top.index[qi * top.k + j])]];
        if (task.ignore_identical_ids && doc == qid) continue;
        // Scores enter the metrics as the float32 values widened, as torch's .tolist() does.
        double score = static_cast<double>(top.scores[qi * top.k + j]);
        run.push_back({doc, score});
        run_scores.push_back(score);
      }
      confidence.push_back(metrics::confidence_scores(run_scores.data(), run_scores.size()));
      metrics::trec_eval_sort(run);
      metrics::JudgedRun judged = metrics::judge_run(run, d.qrels.at(qid));
      for (size_t m = 0; m < n_measures; ++m)
        for (size_t k = 0; k < n_k; ++k) per_query[m][k].push_back(MEASURES[m].per_query(judged, K_VALUES[k]));
    }

    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (size_t m = 0; m < n_measures; ++m) {
      for (size_t k = 0; k < n_k; ++k) {
        double mean = metrics::python_mean(per_query[m][k]);
        if (MEASURES[m].rounded) mean = metrics::python_round(mean, 5);
        out[fmt::format("{}_at_{}", MEASURES[m].name, K_VALUES[k])] = number_or_null(mean);
      }
    }
    // nAUC uses the per-query values before averaging or rounding.
    for (size_t m = 0; m < n_measures; ++m) {
      for (size_t k = 0; k < n_k; ++k) {
        metrics::NaucByConfidence n = metrics::nauc_by_confidence(confidence, per_query[m][k]);
        const double values[] = {n.max, n.std, n.diff1};
        for (size_t c = 0; c < 3; ++c)
          out[fmt::format("nauc_{}_at_{}_{}", MEASURES[m].name, K_VALUES[k], CONFIDENCE_NAMES[c])] =
              number_or_null(values[c]);
      }
    }
    return out;
  }
};

}  // namespace

EMBEVAL_REGISTER_TASK_TYPE(RetrievalTask);

}  // namespace embeval
