// embeval train: train a small embedding model from contrastive pairs
// (runners/train/contrastive_trainer.h) and write it as a checkpoint folder.
#include <unistd.h>

#include <cstdio>
#include <sstream>

#include <ATen/Parallel.h>
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "datasets/training_pairs.h"
#include "harness/error.h"
#include "runners/train/contrastive_trainer.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace embeval::cli {

int command_train(int argc, char** argv) {
  std::vector<std::string> data;
  std::string out, vocab, proportions;
  int threads = 0;
  TrainOptions o;
  po::options_description opts("embeval train --data DIR_OR_JSONL --vocab vocab.txt --out DIR [options]");
  opts.add_options()
      ("help,h", "show this help")
      ("data,d", po::value(&data)->required()->composing(),
       "training pairs: a .jsonl file or a folder of them ({\"query\", \"positive\", \"negatives\", \"kind\"}); repeatable")
      ("vocab", po::value(&vocab)->required(), "WordPiece vocab.txt (copied into the model)")
      ("out,o", po::value(&out)->required(), "new folder for the model")
      ("steps", po::value(&o.steps)->default_value(o.steps), "contrastive steps")
      ("batch-size", po::value(&o.batch)->default_value(o.batch), "pairs a step, over all kinds")
      ("max-length", po::value(&o.max_length)->default_value(o.max_length), "tokens a text, specials included")
      ("passage-max-length", po::value(&o.passage_max_length)->default_value(0),
       "tokens of a qa / title-content passage (0: --max-length); the model's max_seq_length is the larger")
      ("passage-positions", po::value(&o.passage_positions)->default_value(0),
       "read passages up to N tokens and train on a window of --passage-max-length tokens at a random place in each, "
       "keeping its positions; the model's max_seq_length becomes N (0: passages are cut at their start)")
      ("layers", po::value(&o.model.layers)->default_value(o.model.layers), "encoder layers")
      ("hidden", po::value(&o.model.hidden)->default_value(o.model.hidden), "hidden size")
      ("heads", po::value(&o.model.heads)->default_value(o.model.heads), "attention heads")
      ("ffn", po::value(&o.model.ffn)->default_value(o.model.ffn), "feed-forward size")
      ("dropout", po::value(&o.model.dropout)->default_value(o.model.dropout),
       "dropout on hidden states and attention probabilities while training")
      ("lr", po::value(&o.lr)->default_value(o.lr), "peak learning rate (AdamW)")
      ("warmup", po::value(&o.warmup)->default_value(o.warmup), "share of the steps spent warming up")
      ("temperature", po::value(&o.temperature)->default_value(o.temperature), "InfoNCE temperature")
      ("symmetric", "also the positive-to-query direction of the loss, averaged with the query-to-candidates one")
      ("hard-negatives", po::value(&o.hard_negatives)->default_value(o.hard_negatives), "hard negatives a query")
      ("mine-every", po::value(&o.mine_every)->default_value(o.mine_every), "steps between hard-negative checks (0: never)")
      ("mine-pool", po::value(&o.mine_pool)->default_value(o.mine_pool), "texts of a kind ranked when re-mining")
      ("mlm-steps", po::value(&o.mlm_steps)->default_value(o.mlm_steps), "masked-LM warm-up steps first")
      ("proportions", po::value(&proportions),
       "share of each kind in a step, e.g. paraphrase=0.45,nli=0.25,qa=0.25,title-content=0.05; a share for ict adds "
       "inverse-cloze pairs made from the qa / title-content passages (a sentence against the rest of its passage)")
      ("seed", po::value(&o.seed)->default_value(o.seed), "random seed")
      ("fp32", "save float32 weights (default float16)")
      ("threads", po::value(&threads)->default_value(0), "CPU threads (0: every CPU this process may use)")
      ("quiet,q", "no progress");
  po::variables_map vm;
  if (!parse_options(argc, argv, opts, vm)) return 0;
  if (threads < 0) throw po::error("--threads must be >= 0");
  if (threads > 0) at::set_num_threads(threads);
  if (!proportions.empty()) {
    o.proportions.clear();
    std::stringstream ss(proportions);
    std::string item;
    while (std::getline(ss, item, ',')) {
      const auto eq = item.find('=');
      if (eq == std::string::npos) throw po::error("--proportions takes kind=share,...; got \"" + item + "\"");
      try {
        o.proportions[item.substr(0, eq)] = std::stod(item.substr(eq + 1));
      } catch (const std::exception&) {
        throw po::error("--proportions: \"" + item + "\" has no number after =");
      }
    }
  }
  o.vocab = vocab;
  o.out = out;
  o.half = !vm.count("fp32");
  o.symmetric = vm.count("symmetric") > 0;
  const bool tty = isatty(fileno(stderr));
  if (!vm.count("quiet"))
    o.progress = [tty](const std::string& line) {
      std::fprintf(stderr, tty ? "\r%-110s" : "%s\n", line.c_str());
      std::fflush(stderr);
    };
  std::vector<data::TrainingPair> pairs;
  for (const std::string& d : data) {
    std::vector<data::TrainingPair> more = data::read_training_pairs(d);
    pairs.insert(pairs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  const TrainResult r = train_embedding_model(pairs, o);
  if (!vm.count("quiet"))
    std::fprintf(stderr, "%s%s\n", tty ? "\n" : "",
                 fmt::format("{} pairs, {} steps ({} masked-LM) in {:.0f} s; hard negatives: {} sets checked, {} replaced; "
                             "final loss {:.4f} -> {}",
                             r.pairs, o.steps, o.mlm_steps, r.seconds, r.checked, r.replaced,
                             r.losses.empty() ? 0.0 : r.losses.back(), out)
                     .c_str());
  return 0;
}

}  // namespace embeval::cli
