#pragma once
// Loaders for the six MTEB-style data layouts. Each returns plain data for
// the task's evaluation split and validates every row; errors name file:line.
// The layouts are documented in datasets/README.md.
#include <string>
#include <unordered_map>
#include <vector>

#include "datasets/task_spec.h"

namespace embeval::data {

// STS: <split>.jsonl rows {"sentence1", "sentence2", "score": number}.
struct StsData {
  std::vector<std::string> sentence1, sentence2;
  std::vector<double> score;
};
StsData load_sts(const TaskSpec& spec);

// PairClassification: rows {"sentence1", "sentence2", "label": 0 or 1}.
struct PairData {
  std::vector<std::string> sentence1, sentence2;
  std::vector<int> label;
};
PairData load_pairs(const TaskSpec& spec);

// Classification: train.jsonl and <split>.jsonl rows {"text", "label"}.
// Labels (integers or strings) become class indices 0..K-1 in np.unique
// order over train and test labels together (numeric when every label is an
// integer, else lexicographic), the order sklearn's metrics use. A test label
// may be absent from training (small samples): a classifier never predicts it,
// but it still counts in macro F1, as in sklearn.
struct ClassificationData {
  std::vector<std::string> classes;  // class index -> label as written
  std::vector<std::string> train_text, test_text;
  std::vector<int> train_label, test_label;
};
ClassificationData load_classification(const TaskSpec& spec);

// Clustering: one set per line {"sentences": [...], "labels": [...]}.
struct ClusterSet {
  std::vector<std::string> sentences;
  std::vector<std::string> labels;  // integers are kept as their decimal text
};
std::vector<ClusterSet> load_clustering(const TaskSpec& spec);

// Reranking: rows {"query", "positive": [...], "negative": [...]}.
struct RerankingSample {
  std::string query;
  std::vector<std::string> positive, negative;
};
std::vector<RerankingSample> load_reranking(const TaskSpec& spec);

// Retrieval: corpus.jsonl {"_id", "title"?, "text"}, queries.jsonl
// {"_id", "text"}, qrels/<split>.tsv with header "query-id corpus-id score".
// A document's text is (title + " " + text).strip() as MTEB builds it.
struct RetrievalData {
  std::vector<std::string> corpus_ids, corpus_texts;
  std::vector<std::string> query_ids, query_texts;  // only queries named in qrels, file order
  // query id -> (corpus id -> graded relevance), as written (0 included).
  std::unordered_map<std::string, std::unordered_map<std::string, int>> qrels;
};
RetrievalData load_retrieval(const TaskSpec& spec);

}  // namespace embeval::data
