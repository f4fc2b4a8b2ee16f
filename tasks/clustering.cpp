// Clustering: how well mini-batch k-means on the embeddings recovers the
// gold labels, as MTEB 1.39.7's AbsTaskClustering + ClusteringEvaluator score
// it. For each cluster set, MTEB builds a ClusteringEvaluator, whose
// Evaluator.__init__ calls np.random.seed(42), then fits
// sklearn.cluster.MiniBatchKMeans(n_clusters=<distinct labels>,
// batch_size=<task batch_size>, n_init="auto") with no random_state, i.e. on
// numpy's global RandomState: every set starts from a fresh RandomState(42).
// The score is v_measure_score(labels, labels_); the task reports their mean,
// population std (np.std) and the list.
//
// Differences from MTEB:
// - k-means follows task.protocol (datasets/scoring_protocol.h): by default
//   sklearn <= 1.2's random draws (KMEANS_PROTOCOL_SKLEARN_1_2), with which
//   MTEB's reference scores were computed; sklearn 1.3-1.6 draw the first
//   k-means++ center differently and give other (equally valid) clusterings.
// - Distances are summed in double and rounded to float32 where sklearn
//   stores float32: an assignment can only differ where sklearn's own float32
//   rounding flips a near tie (see tasks/metrics/minibatch_kmeans.h).
#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "datasets/task_data.h"
#include "harness/task_type.h"
#include "tasks/metrics/minibatch_kmeans.h"
#include "tasks/metrics/numpy_random.h"
#include "tasks/metrics/v_measure.h"

namespace embeval {
namespace {

// MTEB's Evaluator seeds numpy's global generator with this before each set.
constexpr uint32_t kMtebEvaluatorSeed = 42;

// Gold labels as integer ids (first-appearance order; only the partition matters).
std::vector<int64_t> label_ids(const std::vector<std::string>& labels, int64_t* n_distinct) {
  std::unordered_map<std::string, int64_t> ids;
  std::vector<int64_t> out(labels.size());
  for (size_t i = 0; i < labels.size(); ++i)
    out[i] = ids.emplace(labels[i], static_cast<int64_t>(ids.size())).first->second;
  *n_distinct = static_cast<int64_t>(ids.size());
  return out;
}

class ClusteringTaskType : public TaskType {
 public:
  std::string name() const override { return "Clustering"; }

  std::vector<std::string> metric_names() const override { return {"v_measure", "v_measure_std"}; }

  std::string describe(const data::TaskSpec& task) const override {
    std::vector<data::ClusterSet> sets = data::load_clustering(task);
    size_t sentences = 0;
    for (const auto& s : sets) sentences += s.sentences.size();
    return fmt::format("{} sets, {} sentences", sets.size(), sentences);
  }

  nlohmann::ordered_json evaluate(const data::TaskSpec& task, EvalContext& ctx) const override {
    std::vector<data::ClusterSet> sets = data::load_clustering(task);
    std::vector<double> v_measures;
    for (const data::ClusterSet& set : sets) {
      // MTEB encodes clustering sentences without a prompt type, i.e. never as queries.
      Matrix emb = ctx.encode(set.sentences, ROLE_NONE, "sentences");
      int64_t n_clusters = 0;
      std::vector<int64_t> gold = label_ids(set.labels, &n_clusters);

      metrics::MiniBatchKMeansParams params;
      params.n_clusters = n_clusters;
      params.batch_size = task.batch_size;
      params.protocol = task.protocol == data::ScoringProtocol::sklearn_1_2 ? metrics::KMEANS_PROTOCOL_SKLEARN_1_2
                                                                            : metrics::KMEANS_PROTOCOL_SKLEARN_1_3;
      metrics::NumpyRandomState random_state(kMtebEvaluatorSeed);
      metrics::MiniBatchKMeansResult fit =
          metrics::minibatch_kmeans(emb.values.data(), emb.rows, emb.cols, params, random_state);

      std::vector<int64_t> predicted(fit.labels.begin(), fit.labels.end());
      v_measures.push_back(metrics::v_measure_score(gold.data(), predicted.data(), gold.size()));
    }

    // np.mean and np.std (ddof=0) over the sets.
    const double count = static_cast<double>(v_measures.size());
    double mean = 0;
    for (double v : v_measures) mean += v;
    mean /= count;
    double var = 0;
    for (double v : v_measures) var += (v - mean) * (v - mean);
    const double std_dev = std::sqrt(var / count);

    nlohmann::ordered_json out;
    out["v_measure"] = mean;
    out["v_measure_std"] = std_dev;
    out["v_measures"] = v_measures;
    // MTEB's _add_main_score: a copy of the metric task.json names.
    out["main_score"] = task.main_score == "v_measure_std" ? std_dev : mean;
    return out;
  }
};

}  // namespace
}  // namespace embeval

EMBEVAL_REGISTER_TASK_TYPE(embeval::ClusteringTaskType);
