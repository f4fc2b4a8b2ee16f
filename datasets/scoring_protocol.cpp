#include "datasets/scoring_protocol.h"

namespace embeval::data {

std::string scoring_protocol_name(ScoringProtocol p) {
  switch (p) {
    case ScoringProtocol::sklearn_1_2: return "sklearn-1.2";
    case ScoringProtocol::sklearn_1_3: return "sklearn-1.3";
    case ScoringProtocol::sklearn_1_4: return "sklearn-1.4";
  }
  return "sklearn-1.2";
}

std::string scoring_protocol_releases(ScoringProtocol p) {
  switch (p) {
    case ScoringProtocol::sklearn_1_2: return "scikit-learn 1.2.x";
    case ScoringProtocol::sklearn_1_3: return "scikit-learn 1.3.x";
    case ScoringProtocol::sklearn_1_4: return "scikit-learn 1.4.x-1.6.x";
  }
  return "";
}

std::optional<ScoringProtocol> parse_scoring_protocol(std::string_view name) {
  if (name == "sklearn-1.2") return ScoringProtocol::sklearn_1_2;
  if (name == "sklearn-1.3") return ScoringProtocol::sklearn_1_3;
  // 1.5 and 1.6 changed nothing either fit depends on (their changelogs:
  // multi_class deprecated with the same default; no MiniBatchKMeans entry).
  if (name == "sklearn-1.4" || name == "sklearn-1.5" || name == "sklearn-1.6") return ScoringProtocol::sklearn_1_4;
  return std::nullopt;
}

bool scoring_protocol_applies(std::string_view task_type) {
  return task_type == "Classification" || task_type == "Clustering";
}

std::string scoring_protocol_choices() {
  return "sklearn-1.2 (the default), sklearn-1.3, or sklearn-1.4 (also written sklearn-1.5 or sklearn-1.6)";
}

}  // namespace embeval::data
