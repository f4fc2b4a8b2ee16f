// Classification as MTEB 1.39.7 scores it (AbsTaskClassification with the
// logReg evaluator): n_experiments times, undersample the training split to
// samples_per_label texts per label, fit sklearn's LogisticRegression
// (lbfgs, C=1, max_iter=100) on their embeddings, predict the whole
// evaluation split and score the predictions; report the mean of each score
// and the per-experiment scores. task.protocol picks the fit of scikit-learn
// 1.2-1.3 or of 1.4-1.6 (datasets/scoring_protocol.h).
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "datasets/task_data.h"
#include "harness/error.h"
#include "harness/task_type.h"
#include "tasks/metrics/average_precision.h"
#include "tasks/metrics/classification_scores.h"
#include "tasks/metrics/logistic_regression.h"
#include "tasks/metrics/numpy_random.h"
#include "tasks/metrics/numpy_sum.h"

namespace embeval {
namespace {

// MTEB's Evaluator base class calls np.random.seed(42) in its constructor,
// and the logReg evaluator is constructed after each undersampling. So every
// experiment shuffles the index array left by the previous one with a fresh
// RandomState(42) (the first one after the task's own np.random.seed(42)).
constexpr uint32_t MTEB_SEED = 42;

std::string split_file_name(const data::TaskSpec& task) {
  return (task.dir / (task.eval_split + ".jsonl")).string();
}

// _undersample_data: shuffle idxs in place, then keep the first
// samples_per_label indices of each label in shuffled order.
std::vector<int64_t> undersample(std::vector<int64_t>& idxs, const std::vector<int>& labels, int n_classes,
                                 int samples_per_label) {
  metrics::NumpyRandomState rng(MTEB_SEED);
  rng.shuffle(idxs);
  std::vector<int> taken(n_classes, 0);
  std::vector<int64_t> sample;
  for (int64_t i : idxs) {
    int y = labels[i];
    if (taken[y] < samples_per_label) {
      sample.push_back(i);
      ++taken[y];
    }
  }
  return sample;
}

// Binary tasks also report average_precision_score(y_test, y_pred) on the
// hard predictions, whose default pos_label=1 means the label written as 1;
// the predicted label's value is the score.
struct BinaryAp {
  std::vector<double> value;  // class index -> numeric label
  int positive = -1;          // class index of label 1, -1 if absent
};

BinaryAp binary_ap_labels(const data::TaskSpec& task, const data::ClassificationData& data) {
  BinaryAp ap;
  for (size_t k = 0; k < data.classes.size(); ++k) {
    const std::string& c = data.classes[k];
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(c, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != c.size())
      fail("{}: label \"{}\" is not an integer; expected integer labels for a two-class task (MTEB scores "
           "them with average_precision_score, pos_label=1)",
           (task.dir / "train.jsonl").string(), c);
    ap.value.push_back(static_cast<double>(v));
    if (v == 1) ap.positive = static_cast<int>(k);
  }
  return ap;
}

nlohmann::ordered_json score_experiment(const std::vector<int>& y_true, const std::vector<int>& y_pred,
                                        const BinaryAp* binary) {
  nlohmann::ordered_json s;
  const size_t n = y_true.size();
  s["accuracy"] = metrics::accuracy(y_true.data(), y_pred.data(), n);
  s["f1"] = metrics::f1_macro(y_true.data(), y_pred.data(), n);
  s["f1_weighted"] = metrics::f1_weighted(y_true.data(), y_pred.data(), n);
  if (binary) {
    std::vector<double> score(n);
    std::vector<int> positive(n);
    for (size_t i = 0; i < n; ++i) {
      score[i] = binary->value[y_pred[i]];
      positive[i] = y_true[i] == binary->positive;
    }
    // For a binary y_true, average="macro" and "weighted" both reduce to the
    // plain binary score.
    double ap = metrics::average_precision(score.data(), positive.data(), n);
    s["ap"] = ap;
    s["ap_weighted"] = ap;
  }
  return s;
}

class ClassificationTaskType : public TaskType {
 public:
  std::string name() const override { return "Classification"; }

  std::vector<std::string> metric_names() const override {
    return {"accuracy", "f1", "f1_weighted", "ap", "ap_weighted"};
  }

  std::string describe(const data::TaskSpec& task) const override {
    data::ClassificationData data = data::load_classification(task);
    return fmt::format("{} train, {} test texts, {} classes", data.train_text.size(), data.test_text.size(),
                       data.classes.size());
  }

  nlohmann::ordered_json evaluate(const data::TaskSpec& task, EvalContext& ctx) const override {
    data::ClassificationData data = data::load_classification(task);
    const int n_classes = static_cast<int>(data.classes.size());
    const int64_t n_train = static_cast<int64_t>(data.train_label.size());

    // MTEB adds the ap keys when the undersampled training labels take two
    // values; every training label keeps at least one text, so that is when
    // the training split has two labels. sklearn then needs the test labels
    // to be binary too, with 1 among them if both occur.
    std::vector<bool> in_train(n_classes, false), in_test(n_classes, false);
    for (int y : data.train_label) in_train[y] = true;
    for (int y : data.test_label) in_test[y] = true;
    const bool binary = std::count(in_train.begin(), in_train.end(), true) == 2;
    BinaryAp ap_labels;
    if (binary) {
      ap_labels = binary_ap_labels(task, data);
      int test_labels = static_cast<int>(std::count(in_test.begin(), in_test.end(), true));
      if (test_labels > 2)
        fail("{}: {} labels in a task trained on two; expected the test labels among the training labels (MTEB's "
             "average_precision_score rejects multiclass targets)",
             split_file_name(task), test_labels);
      if (test_labels == 2 && (ap_labels.positive < 0 || !in_test[ap_labels.positive]))
        fail("{}: the two labels lack the label 1; expected 1 as the positive label (MTEB's "
             "average_precision_score uses pos_label=1)",
             split_file_name(task));
    }

    // The draws depend only on the labels: undersample every experiment
    // first, then encode each training text that any experiment uses once.
    std::vector<int64_t> idxs(n_train);
    std::iota(idxs.begin(), idxs.end(), 0);
    std::vector<std::vector<int64_t>> samples;
    for (int e = 0; e < task.n_experiments; ++e)
      samples.push_back(undersample(idxs, data.train_label, n_classes, task.samples_per_label));

    std::vector<int64_t> row_of(n_train, -1);
    std::vector<std::string> train_texts;
    for (const auto& sample : samples)
      for (int64_t i : sample)
        if (row_of[i] < 0) {
          row_of[i] = static_cast<int64_t>(train_texts.size());
          train_texts.push_back(data.train_text[i]);
        }
    Matrix train = ctx.encode(train_texts, ROLE_NONE, "train");
    Matrix test = ctx.encode(data.test_text, ROLE_NONE, "test");
    const int64_t dim = train.cols;

    nlohmann::ordered_json per_experiment = nlohmann::ordered_json::array();
    for (const auto& sample : samples) {
      // Training rows in undersampled order, as MTEB passes X_sampled.
      std::vector<float> x(sample.size() * dim);
      std::vector<int> y(sample.size());
      for (size_t r = 0; r < sample.size(); ++r) {
        std::copy_n(train.row(row_of[sample[r]]), dim, x.data() + r * dim);
        y[r] = data.train_label[sample[r]];
      }
      metrics::LogisticRegressionOptions lr;
      lr.protocol = task.protocol == data::ScoringProtocol::sklearn_1_4 ? metrics::LOGISTIC_PROTOCOL_SKLEARN_1_4
                                                                        : metrics::LOGISTIC_PROTOCOL_SKLEARN_1_2;
      metrics::LogisticRegressionModel model =
          metrics::fit_logistic_regression(x.data(), static_cast<int64_t>(sample.size()), dim, y.data(), lr);
      std::vector<int> pred = metrics::predict(model, test.values.data(), test.rows);
      per_experiment.push_back(score_experiment(data.test_label, pred, binary ? &ap_labels : nullptr));
    }

    // avg_scores: np.mean over experiments of each key of the first one.
    nlohmann::ordered_json scores;
    for (auto it = per_experiment[0].begin(); it != per_experiment[0].end(); ++it) {
      std::vector<double> values;
      for (const auto& s : per_experiment) values.push_back(s[it.key()].get<double>());
      scores[it.key()] = metrics::numpy_mean(values.data(), values.size());
    }
    scores["scores_per_experiment"] = per_experiment;
    return scores;
  }
};

EMBEVAL_REGISTER_TASK_TYPE(ClassificationTaskType);

}  // namespace
}  // namespace embeval
