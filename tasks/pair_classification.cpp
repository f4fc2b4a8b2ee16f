// PairClassification: how well a similarity threshold separates similar from
// dissimilar pairs, as MTEB 1.39.7's PairClassificationEvaluator computes it:
// best-threshold accuracy and F1, average precision, for the model's own
// similarity and four fixed ones, then the best of each over the five.
//
// Differences from MTEB, none of which changes a score beyond rounding:
// - MTEB encodes the de-duplicated union of both columns; so do we (one
//   encode call, EvalContext encodes each distinct text once).
// - Scores are computed in double; MTEB's are float32, so its thresholds
//   (midpoints of two scores) differ from ours by float32 rounding.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "datasets/task_data.h"
#include "harness/task_type.h"
#include "tasks/metrics/average_precision.h"
#include "tasks/metrics/paired_similarity.h"
#include "tasks/metrics/threshold_metrics.h"

namespace embeval {
namespace {

// Score families in MTEB's output order.
const char* const k_score_names[] = {"similarity", "cosine", "manhattan", "euclidean", "dot"};
const char* const k_metric_suffixes[] = {"accuracy", "accuracy_threshold", "f1", "f1_threshold",
                                         "precision", "recall", "ap"};
// The metrics MTEB also reports as max_* over the five families, in its order.
const char* const k_max_metrics[] = {"accuracy", "f1", "precision", "recall", "ap"};

nlohmann::ordered_json number_or_null(double v) {
  // Average precision is undefined (NaN) without a positive pair.
  if (std::isnan(v)) return nullptr;
  return v;
}

std::vector<double> negated(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
}

// Python's max(): the first value, replaced only by a strictly greater one
// (so a NaN in first place stays, as in MTEB).
double python_max(const std::vector<double>& v) {
  double best = v.front();
  for (double x : v)
    if (x > best) best = x;
  return best;
}

struct ScoreSet {
  const char* name;
  std::vector<double> scores;
  bool high_score_more_similar;  // false for distances
};

class PairClassificationTaskType : public TaskType {
 public:
  std::string name() const override { return "PairClassification"; }

  std::vector<std::string> metric_names() const override {
    std::vector<std::string> names;
    for (const char* score : k_score_names)
      for (const char* suffix : k_metric_suffixes) names.push_back(fmt::format("{}_{}", score, suffix));
    for (const char* metric : k_max_metrics) names.push_back(fmt::format("max_{}", metric));
    return names;
  }

  std::string describe(const data::TaskSpec& task) const override {
    return fmt::format("{} pairs", data::load_pairs(task).label.size());
  }

  nlohmann::ordered_json evaluate(const data::TaskSpec& task, EvalContext& ctx) const override {
    data::PairData data = data::load_pairs(task);
    const size_t n = data.label.size();

    // MTEB encodes pair sentences without a prompt type, i.e. never as queries.
    std::vector<std::string> texts = data.sentence1;
    texts.insert(texts.end(), data.sentence2.begin(), data.sentence2.end());
    Matrix emb = ctx.encode(texts, ROLE_NONE, "sentence");
    const float* x = emb.row(0);
    const float* y = emb.row(static_cast<int64_t>(n));
    const int64_t count = static_cast<int64_t>(n), dim = emb.cols;

    std::vector<double> cosine = metrics::paired_cosine_similarity(x, y, count, dim);
    std::vector<double> manhattan = metrics::paired_manhattan_distance(x, y, count, dim);
    std::vector<double> euclidean = metrics::paired_euclidean_distance(x, y, count, dim);
    std::vector<double> dot = metrics::paired_dot_product(x, y, count, dim);

    // sentence-transformers' similarity_pairwise, always "higher is more
    // similar": its euclidean and manhattan similarities are negated distances.
    std::vector<double> model;
    switch (ctx.similarity()) {
      case SIMILARITY_COSINE: model = cosine; break;
      case SIMILARITY_DOT: model = dot; break;
      case SIMILARITY_EUCLIDEAN: model = negated(euclidean); break;
      case SIMILARITY_MANHATTAN: model = negated(manhattan); break;
    }

    std::vector<ScoreSet> sets = {{"similarity", std::move(model), true},
                                  {"cosine", std::move(cosine), true},
                                  {"manhattan", std::move(manhattan), false},
                                  {"euclidean", std::move(euclidean), false},
                                  {"dot", std::move(dot), true}};

    nlohmann::ordered_json out;
    std::vector<double> all_accuracy, all_f1, all_precision, all_recall, all_ap;
    const int* labels = data.label.data();
    for (const ScoreSet& set : sets) {
      const double* s = set.scores.data();
      metrics::BestAccuracy acc = metrics::find_best_acc_and_threshold(s, labels, n, set.high_score_more_similar);
      metrics::BestF1 f1 = metrics::find_best_f1_and_threshold(s, labels, n, set.high_score_more_similar);
      // MTEB ranks distances by their negation for average precision.
      std::vector<double> ranked = set.high_score_more_similar ? set.scores : negated(set.scores);
      double ap = metrics::average_precision(ranked.data(), labels, n);

      const std::string prefix = set.name;
      out[prefix + "_accuracy"] = acc.accuracy;
      out[prefix + "_accuracy_threshold"] = acc.threshold;
      out[prefix + "_f1"] = f1.f1;
      out[prefix + "_f1_threshold"] = f1.threshold;
      out[prefix + "_precision"] = f1.precision;
      out[prefix + "_recall"] = f1.recall;
      out[prefix + "_ap"] = number_or_null(ap);
      all_accuracy.push_back(acc.accuracy);
      all_f1.push_back(f1.f1);
      all_precision.push_back(f1.precision);
      all_recall.push_back(f1.recall);
      all_ap.push_back(ap);
    }
    // Each max is taken on its own: max_precision need not belong to max_f1.
    out["max_accuracy"] = python_max(all_accuracy);
    out["max_f1"] = python_max(all_f1);
    out["max_precision"] = python_max(all_precision);
    out["max_recall"] = python_max(all_recall);
    out["max_ap"] = number_or_null(python_max(all_ap));
    return out;
  }
};

}  // namespace
}  // namespace embeval

EMBEVAL_REGISTER_TASK_TYPE(embeval::PairClassificationTaskType);
