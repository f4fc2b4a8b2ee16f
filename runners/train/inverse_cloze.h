#pragma once
// Inverse Cloze Task pairs (Lee, Chang & Toutanova 2019, "Latent Retrieval
// for Weakly Supervised Open Domain Question Answering", section 4): a
// sentence of a passage is the query and the passage its positive, with the
// sentence removed from it most of the time (90% in the paper) so that the
// model learns to match a sentence to its context and not only to an exact
// copy. The training data has few long passages (../shared/train: about 2,200
// distinct Wikipedia paragraphs and news articles) but each holds several
// sentences, and a sentence shares names and terms with the rest of its
// passage the way a question shares them with the paragraph that answers it.
//
// The pairs are made from the distinct passages (positives and labelled
// negatives) of the qa and title-content pairs. A pair's hard negatives are
// the other passages labelled for the same queries as its passage (for DRCD:
// other paragraphs of the same article); the trainer tops them up at random.
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/training_pairs.h"

namespace embeval {

struct InverseClozeOptions {
  double remove = 0.9;      // probability that the sentence is cut out of its positive
  size_t min_chars = 8;     // a query sentence has this many code points at least (whitespace excluded)
  size_t max_chars = 64;    // and at most this many
  size_t max_negatives = 3; // sibling passages kept as hard negatives
  uint64_t seed = 0;
};

// The kind name of the pairs made here.
inline constexpr const char* kInverseClozeKind = "ict";

// A UTF-8 text cut into sentences: each ends after a run of terminators
// (。！？!?；; or a line break) and the closing quotes or brackets that follow
// it; the last one may have no terminator. The pieces concatenate back to the
// text exactly.
std::vector<std::string> split_sentences(const std::string& text);

// One pair per eligible sentence of each distinct passage, passages in the
// order they first appear in `pairs`, deterministic for a seed.
std::vector<data::TrainingPair> inverse_cloze_pairs(const std::vector<data::TrainingPair>& pairs,
                                                    const InverseClozeOptions& options = {});

}  // namespace embeval
