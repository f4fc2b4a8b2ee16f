#pragma once
// `embeval train`: a small BERT embedding model trained from scratch with
// the training ideas of Conan-embedding (arXiv 2408.15710), on one machine:
//
//  - Loss (info_nce_loss.h): InfoNCE, each query against its positive, the
//    other queries' positives (in-batch negatives) and every hard negative
//    of the batch, cosine / temperature (0.05). Candidates that are the same
//    text as the query's positive (duplicates across pairs) are masked, not
//    negatives. Optionally symmetric (each positive against the queries too).
//  - Balanced multi-source batches (Conan's cross-GPU balancing, on one
//    device): every step draws from each kind of pair (paraphrase, NLI, QA,
//    title-content) in fixed proportions; each kind's loss uses only its own
//    in-batch negatives; the losses are summed and one backward pass and one
//    optimizer step follow (not tasks in alternation).
//  - Dynamic hard-negative mining (Conan section 2.2): every `mine_every`
//    steps the hard negatives of that step's queries are scored with the
//    current model (mean cosine, S_cur). A set is first scored when it is
//    assigned (S_init). When 1.15 * S_cur < S_init and |S_cur| < 0.8 the
//    negatives have become easy: the i-th replacement takes the candidates
//    the current model ranks (i-1)n+10 .. in+10 in a sample of the kind's
//    texts (the top 10 are skipped: likely unlabelled positives), and
//    S_init becomes their score. Each check is logged (checked, replaced).
//    The first negatives are the ones the source labelled, topped up with
//    random texts of the same kind.
//  - Optional inverse-cloze pairs (inverse_cloze.h): with a share for the
//    kind "ict" in the proportions, each sentence of the data's passages
//    becomes a query against the rest of its passage, one more kind of the
//    balanced batches, read with the passage length.
//  - Optional masked-language-model warm-up on the training texts first
//    (15% of tokens, 80/10/10 as BERT), since the model starts from random
//    weights.
//  - Optional passage windows (passage_positions below): long passages are
//    read as a window at a random place that keeps its positions, so the
//    model learns positions beyond what one step's passages cost.
//  - AdamW, linear warm-up then linear decay, gradient norm clipped at 1.
//  - Deterministic for a seed and a thread count: torch's generator for
//    initialisation and dropout, std::mt19937_64 for sampling.
//
// The folder it writes loads with the normal loader; see hf_folder_writer.h.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "datasets/training_pairs.h"
#include "runners/train/trainable_bert.h"

namespace embeval {

struct TrainOptions {
  TrainableBertConfig model;
  std::filesystem::path vocab;  // WordPiece vocab.txt (bert-base-chinese)
  std::filesystem::path out;    // the model folder (created; must not exist)
  int64_t steps = 2000;
  int64_t batch = 64;           // pairs a step, over all kinds
  int64_t max_length = 64;      // tokens a text, specials included
  // Tokens of a passage (the positives and negatives of qa and title-content
  // pairs); 0: max_length. The saved model's max_seq_length is the larger.
  int64_t passage_max_length = 0;
  // 0: a passage is cut to its first passage_max_length tokens. N (larger
  // than that): passages are read up to N tokens, and each time one goes
  // through the model in a training step a window of passage_max_length
  // tokens is taken at a random place in it, its tokens keeping the
  // positions they have in the whole text ([CLS] at 0, [SEP] right after the
  // window). A step costs what passage_max_length tokens cost, every
  // position up to N is trained, and the saved model reads N tokens.
  int64_t passage_positions = 0;
  double lr = 5e-4, warmup = 0.1, weight_decay = 0.01, temperature = 0.05;
  // Also the positive-to-query direction of InfoNCE, averaged with the
  // query-to-candidates one (as GTE's and E5's symmetric losses).
  bool symmetric = false;
  int64_t hard_negatives = 3;   // per query
  int64_t mine_every = 100;     // steps between checks; 0: never re-mine
  double mine_ratio = 1.15, mine_max = 0.8;
  int64_t mine_skip = 10, mine_pool = 2048;
  // Share of each step's pairs per kind (normalised over the kinds present);
  // "ict" adds inverse-cloze pairs made from the qa / title-content passages.
  std::map<std::string, double> proportions = {{"paraphrase", 0.45}, {"nli", 0.25}, {"qa", 0.25}, {"title-content", 0.05}};
  int64_t mlm_steps = 0;        // masked-LM warm-up steps before the contrastive ones
  double mlm_probability = 0.15;
  uint64_t seed = 0;
  bool half = true;             // save float16 weights
  int64_t log_every = 10;
  // Progress lines (a bar with ETA on a terminal); JSONL log lines go to out/train_log.jsonl.
  std::function<void(const std::string&)> progress;
};

struct TrainResult {
  std::vector<double> losses;        // contrastive loss per step
  std::vector<double> mlm_losses;    // warm-up loss per step
  int64_t checked = 0, replaced = 0; // mined-negative sets checked and replaced
  double seconds = 0;
  int64_t pairs = 0;                 // training pairs: those read and the inverse-cloze ones made
};

TrainResult train_embedding_model(const std::vector<data::TrainingPair>& pairs, const TrainOptions& options);

// What the model sees of a tokenized text ([CLS] pieces [SEP]) cut to
// `limit` tokens: [CLS], the limit - 2 pieces from index `first` (1: the
// start, as the tokenizer truncates), and the text's [SEP], with the
// positions those tokens have in the whole text. A text of at most `limit`
// tokens is itself at positions 0 .. n-1 (`first` ignored).
struct TokenWindow {
  std::vector<int32_t> ids;
  std::vector<int64_t> positions;
};
TokenWindow token_window(const std::vector<int32_t>& tokens, size_t limit, size_t first);

}  // namespace embeval
