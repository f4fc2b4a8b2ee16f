// STS: how well embedding similarity ranks sentence pairs against gold
// scores, as MTEB 1.39.7's STSEvaluator computes it.
//
// Differences from MTEB, none of which changes a score beyond rounding:
// - MTEB rescales gold scores to (score - min_score) / (max_score - min_score)
//   from task metadata; task.json has no such range, and an increasing affine
//   map leaves Pearson unchanged (up to ~1e-16) and Spearman exactly unchanged.
// - MTEB encodes sentence1 and sentence2 in two calls; we encode both in one,
//   so a sentence that occurs in both columns is encoded once.
// - Similarities are computed in double; MTEB's are float32.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "datasets/task_data.h"
#include "harness/task_type.h"
#include "tasks/metrics/correlation.h"
#include "tasks/metrics/paired_similarity.h"

namespace embeval {
namespace {

nlohmann::ordered_json number_or_null(double v) {
  // A correlation is undefined (scipy: NaN) when either side is constant.
  if (std::isnan(v)) return nullptr;
  return v;
}

std::vector<double> negated(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
}

class StsTaskType : public TaskType {
 public:
  std::string name() const override { return "STS"; }

  // MTEB's keys in MTEB's order. "pearson"/"spearman" use the model's own
  // similarity function; the others a fixed one.
  std::vector<std::string> metric_names() const override {
    return {"pearson",           "spearman",           "cosine_pearson",    "cosine_spearman",
            "manhattan_pearson", "manhattan_spearman", "euclidean_pearson", "euclidean_spearman"};
  }

  std::string describe(const data::TaskSpec& task) const override {
    return fmt::format("{} pairs", data::load_sts(task).score.size());
  }

  nlohmann::ordered_json evaluate(const data::TaskSpec& task, EvalContext& ctx) const override {
    data::StsData data = data::load_sts(task);
    const size_t n = data.score.size();

    // MTEB encodes STS sentences without a prompt type, i.e. never as queries.
    std::vector<std::string> texts = data.sentence1;
    texts.insert(texts.end(), data.sentence2.begin(), data.sentence2.end());
    Matrix emb = ctx.encode(texts, ROLE_NONE, "sentence");
    const float* x = emb.row(0);
    const float* y = emb.row(static_cast<int64_t>(n));
    const int64_t count = static_cast<int64_t>(n), dim = emb.cols;

    // MTEB correlates gold scores with -distance, so all three are similarities.
    std::vector<double> cosine = metrics::paired_cosine_similarity(x, y, count, dim);
    std::vector<double> manhattan = negated(metrics::paired_manhattan_distance(x, y, count, dim));
    std::vector<double> euclidean = negated(metrics::paired_euclidean_distance(x, y, count, dim));

    // sentence-transformers' similarity_pairwise: cosine, dot, or a negated distance.
    std::vector<double> model;
    switch (ctx.similarity()) {
      case SIMILARITY_COSINE: model = cosine; break;
      case SIMILARITY_DOT: model = metrics::paired_dot_product(x, y, count, dim); break;
      case SIMILARITY_EUCLIDEAN: model = euclidean; break;
      case SIMILARITY_MANHATTAN: model = manhattan; break;
    }

    const double* gold = data.score.data();
    nlohmann::ordered_json out;
    out["pearson"] = number_or_null(metrics::pearson(gold, model.data(), n));
    out["spearman"] = number_or_null(metrics::spearman(gold, model.data(), n));
    out["cosine_pearson"] = number_or_null(metrics::pearson(gold, cosine.data(), n));
    out["cosine_spearman"] = number_or_null(metrics::spearman(gold, cosine.data(), n));
    out["manhattan_pearson"] = number_or_null(metrics::pearson(gold, manhattan.data(), n));
    out["manhattan_spearman"] = number_or_null(metrics::spearman(gold, manhattan.data(), n));
    out["euclidean_pearson"] = number_or_null(metrics::pearson(gold, euclidean.data(), n));
    out["euclidean_spearman"] = number_or_null(metrics::spearman(gold, euclidean.data(), n));
    return out;
  }
};

}  // namespace
}  // namespace embeval

EMBEVAL_REGISTER_TASK_TYPE(embeval::StsTaskType);
