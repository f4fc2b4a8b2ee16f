#pragma once
// Which scikit-learn release's numerics the Classification and Clustering
// scores reproduce. MTEB 1.39.7 fits sklearn's LogisticRegression and
// MiniBatchKMeans with fixed seeds, and sklearn changed both between
// releases, so the same embeddings get other scores from MTEB depending on
// the scikit-learn a user has installed:
//   sklearn-1.2  scikit-learn 1.2.x: k-means++ draws its first center with
//                randint(n); LogisticRegression minimises the summed loss
//                (lambda = 1/C, scipy's L-BFGS-B defaults ftol 2.2e-9, maxls 20).
//                The default: MTEB's reference scores were made with it.
//   sklearn-1.3  scikit-learn 1.3.x: the first k-means++ center is
//                choice(n, p=w/sum(w)) (PR #25752); LogisticRegression as 1.2.
//   sklearn-1.4  scikit-learn 1.4.x-1.6.x: k-means as 1.3; LogisticRegression
//                minimises the mean loss, lambda = 1/(C n), ftol 64 eps,
//                maxls 50 (PR #26721), which stops L-BFGS at other iterates.
// The L-BFGS-B is scipy's Fortran one (scipy < 1.15); scipy 1.15 rewrote it
// in C with slightly different iterates, which no protocol reproduces.
// task.json "protocol" names one; `embeval run --protocol` overrides it.
#include <optional>
#include <string>
#include <string_view>

namespace embeval::data {

enum class ScoringProtocol { sklearn_1_2, sklearn_1_3, sklearn_1_4 };

constexpr ScoringProtocol DEFAULT_SCORING_PROTOCOL = ScoringProtocol::sklearn_1_2;

// Canonical name ("sklearn-1.4"); parse_scoring_protocol(name) gives it back.
std::string scoring_protocol_name(ScoringProtocol p);
// The scikit-learn releases it reproduces, e.g. "scikit-learn 1.4.x-1.6.x".
std::string scoring_protocol_releases(ScoringProtocol p);
// A canonical name, or a release the table above covers ("sklearn-1.5" is
// sklearn-1.4's numerics); nullopt otherwise.
std::optional<ScoringProtocol> parse_scoring_protocol(std::string_view name);
// Whether scores of a task type depend on the protocol (Classification,
// Clustering): only those tasks take one, and only their results record it.
bool scoring_protocol_applies(std::string_view task_type);
// What parse_scoring_protocol accepts, for error messages.
std::string scoring_protocol_choices();

}  // namespace embeval::data
