#include "runners/train/contrastive_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/error.h"
#include "runners/tokenizers/tokenizer.h"
#include "runners/train/hf_folder_writer.h"
#include "runners/train/info_nce_loss.h"
#include "runners/train/inverse_cloze.h"

namespace embeval {
namespace fs = std::filesystem;

namespace {

struct Pair {
  int32_t query = 0, positive = 0;  // text ids
  std::vector<int32_t> negatives;   // text ids, options.hard_negatives of them
  double s_init = std::numeric_limits<double>::quiet_NaN();  // mean negative score when assigned
  int times_mined = 0;
};

struct Kind {
  std::string name;
  std::vector<int32_t> pairs;  // indices into the pair table
  std::vector<int32_t> texts;  // every text of the kind (pool for negatives)
  std::vector<int32_t> order;  // shuffled pair indices, consumed from `cursor`
  size_t cursor = 0;
  int64_t quota = 0;           // pairs a step
};

class Trainer {
 public:
  Trainer(const std::vector<data::TrainingPair>& input, const TrainOptions& o) : o_(o), rng_(o.seed) {
    if (o.hard_negatives < 0 || o.batch < 1 || o.steps < 0 || o.max_length < 4 || o.temperature <= 0)
      fail("train: batch, steps, max length, temperature and hard negatives must be positive");
    if (!(o.model.dropout >= 0 && o.model.dropout < 1)) fail("train: dropout must be in [0, 1); got {}", o.model.dropout);
    if (fs::exists(o.out)) fail("{}: already exists; give a new folder for the model", o.out.string());
    tmp_ = o.out.string() + ".partial";
    fs::remove_all(tmp_);
    long_len_ = std::max(o.max_length, o.passage_max_length);
    if (o.passage_positions != 0 && (o.passage_positions <= long_len_ || o.passage_positions > o.model.max_positions))
      fail("train: passage positions must be 0 or more than the passage length ({}) and at most the position table ({}); "
           "got {}", long_len_, o.model.max_positions, o.passage_positions);
    read_len_ = std::max(long_len_, o.passage_positions);
    write_tokenizer_files(tmp_, o.vocab, read_len_);
    tokenizer_ = load_tokenizer(tmp_);
    read_specials();
    torch::manual_seed(o.seed);
    TrainableBertConfig mc = o.model;
    mc.vocab_size = tokenizer_->vocab_size();
    mc.max_positions = std::max(mc.max_positions, read_len_);
    model_ = TrainableBert(mc);
    try {
      build_tables(input);
    } catch (...) {
      fs::remove_all(tmp_);  // bad data or proportions leave no half-written folder
      throw;
    }
  }

  TrainResult run() {
    TrainResult r;
    r.pairs = static_cast<int64_t>(pairs_.size());
    const auto start = std::chrono::steady_clock::now();
    log_.open(tmp_ / "train_log.jsonl");
    if (o_.mlm_steps > 0) mlm_warmup(r);
    contrastive(r);
    r.seconds = seconds_since(start);
    model_->eval();
    write_model_files(tmp_, model_->config(), model_->hf_state_dict(), o_.half);
    nlohmann::ordered_json card_info = {{"pairs", r.pairs}, {"steps", o_.steps}, {"mlm_steps", o_.mlm_steps},
                                        {"seconds", r.seconds}, {"mined_checked", r.checked}, {"mined_replaced", r.replaced}};
    log_ << nlohmann::ordered_json{{"done", card_info}}.dump() << '\n';
    log_.close();
    write_card(r);
    fs::rename(tmp_, o_.out);
    return r;
  }

 private:
  const TrainOptions& o_;
  std::mt19937_64 rng_;
  fs::path tmp_;
  int64_t long_len_ = 0;  // tokens a text has in a step (the longer of the two limits)
  int64_t read_len_ = 0;  // tokens kept per text: long_len_, or passage_positions
  std::unique_ptr<Tokenizer> tokenizer_;
  int32_t cls_ = 101, sep_ = 102, pad_ = 0, mask_ = 103;
  TrainableBert model_{nullptr};
  std::vector<std::vector<int32_t>> tokens_;  // per text id
  std::vector<Pair> pairs_;
  std::vector<Kind> kinds_;
  int64_t ict_pairs_ = 0;  // inverse-cloze pairs made from the passages (inverse_cloze.h)
  std::ofstream log_;

  // README.md: what the model is, how it was trained, and its limits. Scores
  // are added by whoever evaluates it (`embeval run`), not guessed here.
  void write_card(const TrainResult& r) const {
    const TrainableBertConfig& c = model_->config();
    const std::string windows =
        o_.passage_positions > 0
            ? fmt::format(" Passages were trained as windows of {} tokens at random places in their first {}, keeping "
                          "their positions, so positions beyond {} saw fewer tokens than the first ones.",
                          long_len_, read_len_, long_len_)
            : "";
    std::string kinds;
    for (const Kind& k : kinds_)
      kinds += fmt::format("\n| {} | {} | {} |", k.name, k.pairs.size(), k.quota);
    std::ofstream out(tmp_ / "README.md");
    out << fmt::format(
        "# embeval-trained Chinese embedding model\n\n"
        "A BERT encoder ({} layers, hidden {}, {} heads, FFN {}, vocabulary {}, {} tokens at most) trained from random "
        "weights by `embeval train`: masked-LM warm-up ({} steps), then {} contrastive steps of {} pairs, InfoNCE with "
        "in-batch and {} hard negatives a query at temperature {}{}, every step drawing from each kind of pair in fixed "
        "proportions (one loss per kind, summed; Conan-embedding's balancing on one machine), hard negatives re-mined "
        "with the current model every {} steps (Conan's rule: replaced when 1.15 x their score < their score when "
        "mined and |score| < 0.8; {} sets checked, {} replaced). AdamW, peak learning rate {}, dropout {}, seed {}, {:.0f} s.\n\n"
        "Pipeline: mean pooling over tokens, L2 normalisation; cosine similarity. Weights in {}.\n\n"
        "| kind | pairs | per step |\n| --- | ---: | ---: |{}\n\n"
        "Data: {} pairs (JSON Lines with query, positive, negatives, kind){}; see the data's own README for sources and "
        "licences. Limits: a small model trained for minutes on a CPU from random weights; no pretrained language "
        "model behind it; Chinese only; texts beyond {} tokens are truncated.{} `train_log.jsonl` holds the loss per "
        "kind, learning rate, throughput and every mining check.\n",
        c.layers, c.hidden, c.heads, c.ffn, c.vocab_size, read_len_, o_.mlm_steps, o_.steps, o_.batch,
        o_.hard_negatives, o_.temperature,
        o_.symmetric ? " (and each positive against the queries, the two directions averaged)" : "", o_.mine_every, r.checked, r.replaced, o_.lr, c.dropout, o_.seed, r.seconds,
        o_.half ? "float16" : "float32", kinds, r.pairs - ict_pairs_,
        ict_pairs_ > 0 ? fmt::format(", and {} inverse-cloze pairs (ict) made from their passages: a sentence against "
                                     "the rest of its passage (Lee et al. 2019)", ict_pairs_)
                       : "",
        read_len_, windows);
  }

  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  void read_specials() {
    std::ifstream in(tmp_ / "vocab.txt");
    std::string line;
    for (int32_t id = 0; std::getline(in, line); ++id) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line == "[CLS]") cls_ = id;
      if (line == "[SEP]") sep_ = id;
      if (line == "[PAD]") pad_ = id;
      if (line == "[MASK]") mask_ = id;
    }
  }

  int32_t text_id(std::unordered_map<std::string, int32_t>& ids, const std::string& t) {
    auto [it, inserted] = ids.emplace(t, static_cast<int32_t>(tokens_.size()));
    if (inserted) tokens_.push_back(tokenizer_->encode(t, read_len_));
    return it->second;
  }

  void build_tables(const std::vector<data::TrainingPair>& given) {
    if (given.empty()) fail("train: no training pairs");
    std::unordered_map<std::string, int32_t> ids;
    std::map<std::string, size_t> kind_index;
    for (const auto& [k, share] : o_.proportions)
      if (share < 0) fail("train: proportion of {} is negative", k);
    // A share for "ict": inverse-cloze pairs made from the data's passages.
    std::vector<data::TrainingPair> ict;
    if (auto p = o_.proportions.find(kInverseClozeKind); p != o_.proportions.end() && p->second > 0) {
      InverseClozeOptions io;
      io.seed = o_.seed;
      ict = inverse_cloze_pairs(given, io);
      if (ict.empty())
        fail("train: ict has a share but the data has no qa or title-content passage of two sentences or more");
      ict_pairs_ = static_cast<int64_t>(ict.size());
    }
    std::vector<const data::TrainingPair*> input;
    for (const data::TrainingPair& tp : given) input.push_back(&tp);
    for (const data::TrainingPair& tp : ict) input.push_back(&tp);
    for (const data::TrainingPair* in : input) {
      const data::TrainingPair& tp = *in;
      auto [it, inserted] = kind_index.emplace(tp.kind, kinds_.size());
      if (inserted) {
        kinds_.emplace_back();
        kinds_.back().name = tp.kind;
      }
      Kind& k = kinds_[it->second];
      Pair p;
      p.query = text_id(ids, tp.query);
      p.positive = text_id(ids, tp.positive);
      for (const std::string& n : tp.negatives) {
        const int32_t id = text_id(ids, n);
        if (id != p.query && id != p.positive && static_cast<int64_t>(p.negatives.size()) < o_.hard_negatives)
          p.negatives.push_back(id);
      }
      k.pairs.push_back(static_cast<int32_t>(pairs_.size()));
      k.texts.push_back(p.query);
      k.texts.push_back(p.positive);
      for (int32_t n : p.negatives) k.texts.push_back(n);
      pairs_.push_back(std::move(p));
    }
    // Kinds in the fixed order (ict last), their texts unique, negatives topped up at random.
    std::sort(kinds_.begin(), kinds_.end(), [](const Kind& a, const Kind& b) {
      const auto& order = data::training_kinds();
      return std::find(order.begin(), order.end(), a.name) < std::find(order.begin(), order.end(), b.name);
    });
    double total = 0;
    for (Kind& k : kinds_) {
      std::sort(k.texts.begin(), k.texts.end());
      k.texts.erase(std::unique(k.texts.begin(), k.texts.end()), k.texts.end());
      auto p = o_.proportions.find(k.name);
      total += p == o_.proportions.end() ? 0 : p->second;
      for (int32_t pi : k.pairs) {
        Pair& p = pairs_[static_cast<size_t>(pi)];
        while (static_cast<int64_t>(p.negatives.size()) < o_.hard_negatives && k.texts.size() > 2) {
          const int32_t t = k.texts[std::uniform_int_distribution<size_t>(0, k.texts.size() - 1)(rng_)];
          if (t != p.query && t != p.positive) p.negatives.push_back(t);
        }
      }
    }
    if (total <= 0) fail("train: no kind of the data has a positive proportion");
    // Quotas: the proportions of the batch, at least one pair for every kind that has a share.
    for (Kind& k : kinds_) {
      auto p = o_.proportions.find(k.name);
      const double share = p == o_.proportions.end() ? 0 : p->second / total;
      k.quota = share > 0 ? std::max<int64_t>(1, std::llround(share * static_cast<double>(o_.batch))) : 0;
      k.quota = std::min<int64_t>(k.quota, static_cast<int64_t>(k.pairs.size()));
    }
  }

  // Whether a kind's candidates are passages (longer limit).
  static bool passages(const Kind& k) { return k.name == "qa" || k.name == "title-content" || k.name == kInverseClozeKind; }

  // Texts -> padded ids and mask on the CPU, each cut to `limit` tokens
  // (0: as tokenized) the way the tokenizer truncates: pieces first, the
  // closing [SEP] kept.
  //
  // windows: a text longer than `limit` gives a window at a random place
  // instead of its start ([CLS], limit - 2 consecutive pieces, [SEP]), and
  // the third tensor holds each token's position in the whole text (the
  // [SEP] right after the window's last piece); without, it is undefined
  // and positions are 0 .. t-1.
  struct Batch {
    torch::Tensor ids, mask, positions;
  };
  Batch batch_of(const std::vector<int32_t>& texts, int64_t limit = 0, bool windows = false) {
    auto len = [&](int32_t id) {
      const size_t n = tokens_[static_cast<size_t>(id)].size();
      return limit > 0 ? std::min(n, static_cast<size_t>(limit)) : n;
    };
    size_t t = 1;
    for (int32_t id : texts) t = std::max(t, len(id));
    torch::Tensor ids = torch::full({static_cast<int64_t>(texts.size()), static_cast<int64_t>(t)}, pad_, torch::kLong);
    torch::Tensor mask = torch::zeros_like(ids), pos;
    if (windows) pos = torch::zeros_like(ids);
    auto ia = ids.accessor<int64_t, 2>();
    auto ma = mask.accessor<int64_t, 2>();
    for (size_t r = 0; r < texts.size(); ++r) {
      const auto& tok = tokens_[static_cast<size_t>(texts[r])];
      const size_t n = len(texts[r]);
      // The window's first piece: 1 (the start) unless a window is drawn
      // (any of the tok.size() - n + 1 windows that fit).
      size_t first = 1;
      if (windows && n < tok.size()) first = std::uniform_int_distribution<size_t>(1, tok.size() - n + 1)(rng_);
      const TokenWindow w = token_window(tok, n, first);
      for (size_t c = 0; c < n; ++c) {
        ia[static_cast<int64_t>(r)][static_cast<int64_t>(c)] = w.ids[c];
        ma[static_cast<int64_t>(r)][static_cast<int64_t>(c)] = 1;
        if (windows) pos[static_cast<int64_t>(r)][static_cast<int64_t>(c)] = w.positions[c];
      }
    }
    return {ids, mask, pos};
  }

  // Embeddings of `texts` in their order. They go through the model in
  // chunks of similar length (sorted, kBucket texts a chunk), each padded
  // only to its own longest: padded to the batch's longest, a third of the
  // tokens of the shared training data's batches are padding (1.51x the real
  // ones; 1.08x in chunks), and a text's embedding does not depend on what
  // it is batched with.
  //
  // windows: see batch_of; only training steps draw windows (the mining
  // checks compare scores over time, so they read each text's start).
  torch::Tensor embed(const std::vector<int32_t>& texts, int64_t limit, bool windows = false) {
    constexpr size_t kBucket = 16;
    if (texts.size() <= kBucket) {
      const Batch b = batch_of(texts, limit, windows);
      return model_->embed(b.ids, b.mask, b.positions);
    }
    std::vector<int64_t> order(texts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return tokens_[static_cast<size_t>(texts[static_cast<size_t>(a)])].size() <
             tokens_[static_cast<size_t>(texts[static_cast<size_t>(b)])].size();
    });
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < order.size(); i += kBucket) {
      std::vector<int32_t> chunk;
      for (size_t j = i; j < std::min(order.size(), i + kBucket); ++j) chunk.push_back(texts[static_cast<size_t>(order[j])]);
      const Batch b = batch_of(chunk, limit, windows);
      parts.push_back(model_->embed(b.ids, b.mask, b.positions));
    }
    std::vector<int64_t> back(order.size());  // position of each text in the sorted order
    for (size_t r = 0; r < order.size(); ++r) back[static_cast<size_t>(order[r])] = static_cast<int64_t>(r);
    return torch::cat(parts).index_select(0, torch::tensor(back, torch::kLong));
  }

  torch::Tensor embed_eval(const std::vector<int32_t>& texts, int64_t limit) {
    torch::NoGradGuard g;
    const bool was = model_->is_training();
    model_->eval();
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < texts.size(); i += 256) {
      std::vector<int32_t> chunk(texts.begin() + static_cast<std::ptrdiff_t>(i),
                                 texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), i + 256)));
      parts.push_back(embed(chunk, limit));
    }
    model_->train(was);
    return torch::cat(parts);
  }

  std::vector<int32_t> next_pairs(Kind& k) {
    std::vector<int32_t> out;
    for (int64_t i = 0; i < k.quota; ++i) {
      if (k.cursor >= k.order.size()) {
        k.order = k.pairs;
        std::shuffle(k.order.begin(), k.order.end(), rng_);
        k.cursor = 0;
      }
      out.push_back(k.order[k.cursor++]);
    }
    return out;
  }

  void set_lr(torch::optim::Optimizer& opt, double lr) {
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  }

  double lr_at(int64_t step, int64_t steps) const {
    const double warm = std::max(1.0, o_.warmup * static_cast<double>(steps));
    if (step < warm) return o_.lr * (step + 1) / warm;
    return o_.lr * std::max(0.0, (static_cast<double>(steps) - step) / std::max(1.0, steps - warm));
  }

  // Conan's check for the pairs of a step whose negatives were scored when
  // they were assigned (S_init): `s_cur` holds their mean negative score in
  // this step. The easy ones get new negatives from the current model's
  // ranking of a sample of the kind's texts.
  int64_t remine(Kind& k, const std::vector<int32_t>& batch, const std::vector<double>& s_cur, const torch::Tensor& q) {
    torch::Tensor pool_emb;
    std::vector<int32_t> pool;
    const int64_t nn = o_.hard_negatives;
    int64_t replaced = 0;
    for (size_t b = 0; b < batch.size(); ++b) {
      Pair& p = pairs_[static_cast<size_t>(batch[b])];
      if (std::isnan(p.s_init) || !(o_.mine_ratio * s_cur[b] < p.s_init && std::abs(s_cur[b]) < o_.mine_max)) continue;
      if (!pool_emb.defined()) {  // a sample of the kind's texts, ranked by the current model
        pool = k.texts;
        std::shuffle(pool.begin(), pool.end(), rng_);
        pool.resize(std::min<size_t>(pool.size(), static_cast<size_t>(o_.mine_pool)));
        pool_emb = embed_eval(pool, passages(k) ? long_len_ : o_.max_length);
      }
      const torch::Tensor scores = pool_emb.matmul(q[static_cast<int64_t>(b)].detach());
      std::vector<int64_t> rank(pool.size());
      std::iota(rank.begin(), rank.end(), 0);
      auto sa = scores.accessor<float, 1>();
      std::stable_sort(rank.begin(), rank.end(), [&](int64_t x, int64_t y) { return sa[x] > sa[y]; });
      rank.erase(std::remove_if(rank.begin(), rank.end(),
                                [&](int64_t x) {
                                  const int32_t t = pool[static_cast<size_t>(x)];
                                  return t == p.query || t == p.positive;
                                }),
                 rank.end());
      if (static_cast<int64_t>(rank.size()) < nn) continue;
      const int i = ++p.times_mined;
      const int64_t from = std::min<int64_t>((i - 1) * nn + o_.mine_skip, static_cast<int64_t>(rank.size()) - nn);
      double s = 0;
      for (int64_t j = 0; j < nn; ++j) {
        p.negatives[static_cast<size_t>(j)] = pool[static_cast<size_t>(rank[static_cast<size_t>(from + j)])];
        s += sa[rank[static_cast<size_t>(from + j)]];
      }
      p.s_init = s / static_cast<double>(nn);
      ++replaced;
    }
    return replaced;
  }

  void contrastive(TrainResult& r) {
    model_->train();
    torch::optim::AdamW opt(model_->parameters(), torch::optim::AdamWOptions(o_.lr).weight_decay(o_.weight_decay));
    int64_t texts_seen = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < o_.steps; ++step) {
      set_lr(opt, lr_at(step, o_.steps));
      opt.zero_grad();
      torch::Tensor total;
      nlohmann::ordered_json per_kind = nlohmann::ordered_json::object();
      int64_t checked = 0, replaced = 0;
      const bool check = o_.mine_every > 0 && step % o_.mine_every == 0;
      for (Kind& k : kinds_) {
        if (k.quota == 0) continue;
        const std::vector<int32_t> batch = next_pairs(k);
        std::vector<int32_t> queries, cands;
        for (int32_t pi : batch) {
          queries.push_back(pairs_[static_cast<size_t>(pi)].query);
          cands.push_back(pairs_[static_cast<size_t>(pi)].positive);
        }
        for (int32_t pi : batch)
          for (int32_t n : pairs_[static_cast<size_t>(pi)].negatives) cands.push_back(n);
        const torch::Tensor q = embed(queries, o_.max_length), c = embed(cands, passages(k) ? long_len_ : o_.max_length,
                                                                         passages(k) && o_.passage_positions > 0);
        // Each pair's mean hard-negative score in this step: its S_init the
        // first time, and what the check compares with S_init afterwards.
        if (o_.hard_negatives > 0) {
          const int64_t nb = static_cast<int64_t>(batch.size()), nn = o_.hard_negatives;
          const torch::Tensor neg = c.detach().narrow(0, nb, nb * nn).view({nb, nn, -1});
          const torch::Tensor s = (neg * q.detach().unsqueeze(1)).sum(-1).mean(1);
          std::vector<double> s_cur(static_cast<size_t>(nb));
          for (int64_t i = 0; i < nb; ++i) s_cur[static_cast<size_t>(i)] = s[i].item<double>();
          if (check) {
            for (int32_t pi : batch) checked += !std::isnan(pairs_[static_cast<size_t>(pi)].s_init);
            replaced += remine(k, batch, s_cur, q);
          }
          for (int64_t i = 0; i < nb; ++i) {
            Pair& p = pairs_[static_cast<size_t>(batch[static_cast<size_t>(i)])];
            if (std::isnan(p.s_init)) p.s_init = s_cur[static_cast<size_t>(i)];
          }
        }
        const torch::Tensor loss = info_nce_loss(q, c, queries, cands, o_.temperature, o_.symmetric);
        per_kind[k.name] = loss.item<double>();
        total = total.defined() ? total + loss : loss;
        texts_seen += static_cast<int64_t>(queries.size() + cands.size());
      }
      total.backward();
      torch::nn::utils::clip_grad_norm_(model_->parameters(), 1.0);
      opt.step();
      r.losses.push_back(total.item<double>());
      r.checked += checked;
      r.replaced += replaced;
      const double elapsed = seconds_since(t0);
      if (check || step % o_.log_every == 0 || step + 1 == o_.steps) {
        nlohmann::ordered_json line = {{"phase", "contrastive"}, {"step", step}, {"loss", r.losses.back()},
                                       {"loss_by_kind", per_kind}, {"lr", lr_at(step, o_.steps)},
                                       {"texts_per_s", elapsed > 0 ? texts_seen / elapsed : 0.0}};
        if (check) line["mining"] = {{"checked", checked}, {"replaced", replaced}};
        log_ << line.dump() << '\n';
        log_.flush();
        if (o_.progress) {
          const double eta = step > 0 ? elapsed / (step + 1) * static_cast<double>(o_.steps - step - 1) : 0;
          o_.progress(fmt::format("step {}/{} loss {:.4f} lr {:.2e} {:.0f} texts/s, ETA {:.0f} s{}", step + 1, o_.steps,
                                  r.losses.back(), lr_at(step, o_.steps), elapsed > 0 ? texts_seen / elapsed : 0.0, eta,
                                  check ? fmt::format(", mined: {} checked, {} replaced", checked, replaced) : ""));
        }
      }
    }
  }

  // BERT's masked-LM objective on the training texts: 15% of the tokens
  // (specials excepted), of which 80% become [MASK], 10% a random token, 10%
  // stay.
  void mlm_warmup(TrainResult& r) {
    model_->train();
    torch::optim::AdamW opt(model_->parameters(), torch::optim::AdamWOptions(o_.lr).weight_decay(o_.weight_decay));
    std::uniform_int_distribution<size_t> pick(0, tokens_.size() - 1);
    std::uniform_real_distribution<double> u(0, 1);
    const int64_t vocab = model_->config().vocab_size;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < o_.mlm_steps; ++step) {
      set_lr(opt, lr_at(step, o_.mlm_steps));
      std::vector<int32_t> texts;
      for (int64_t i = 0; i < 2 * o_.batch; ++i) texts.push_back(static_cast<int32_t>(pick(rng_)));
      const Batch batch = batch_of(texts, o_.max_length);
      const torch::Tensor& ids = batch.ids;
      const torch::Tensor& mask = batch.mask;
      torch::Tensor input = ids.clone();
      std::vector<int64_t> rows, labels;
      auto ia = input.accessor<int64_t, 2>();
      auto oa = ids.accessor<int64_t, 2>();
      for (int64_t b = 0; b < ids.size(0); ++b)
        for (int64_t t = 0; t < ids.size(1); ++t) {
          const int64_t id = oa[b][t];
          if (id == pad_ || id == cls_ || id == sep_ || u(rng_) >= o_.mlm_probability) continue;
          rows.push_back(b * ids.size(1) + t);
          labels.push_back(id);
          const double v = u(rng_);
          if (v < 0.8) ia[b][t] = mask_;
          else if (v < 0.9) ia[b][t] = std::uniform_int_distribution<int64_t>(0, vocab - 1)(rng_);
        }
      if (rows.empty()) continue;
      opt.zero_grad();
      const torch::Tensor hidden = model_->forward(input, mask);
      const torch::Tensor logits = model_->mlm_logits(hidden, torch::tensor(rows, torch::kLong));
      const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, torch::tensor(labels, torch::kLong));
      loss.backward();
      torch::nn::utils::clip_grad_norm_(model_->parameters(), 1.0);
      opt.step();
      r.mlm_losses.push_back(loss.item<double>());
      if (step % o_.log_every == 0 || step + 1 == o_.mlm_steps) {
        log_ << nlohmann::ordered_json{{"phase", "mlm"}, {"step", step}, {"loss", r.mlm_losses.back()},
                                       {"lr", lr_at(step, o_.mlm_steps)}}
                    .dump()
             << '\n';
        if (o_.progress) {
          const double elapsed = seconds_since(t0);
          o_.progress(fmt::format("masked-LM warm-up {}/{} loss {:.4f}, ETA {:.0f} s", step + 1, o_.mlm_steps,
                                  r.mlm_losses.back(), elapsed / (step + 1) * static_cast<double>(o_.mlm_steps - step - 1)));
        }
      }
    }
  }
};

}  // namespace

TokenWindow token_window(const std::vector<int32_t>& tokens, size_t limit, size_t first) {
  TokenWindow w;
  const size_t n = tokens.size();
  if (n <= limit) {
    w.ids = tokens;
    for (size_t i = 0; i < n; ++i) w.positions.push_back(static_cast<int64_t>(i));
    return w;
  }
  if (limit < 2 || first < 1 || first + (limit - 2) > n - 1)
    fail("train: a window of {} tokens from piece {} does not fit a text of {}", limit, first, n);
  w.ids.push_back(tokens[0]);
  w.positions.push_back(0);
  for (size_t i = first; i < first + (limit - 2); ++i) {
    w.ids.push_back(tokens[i]);
    w.positions.push_back(static_cast<int64_t>(i));
  }
  w.ids.push_back(tokens[n - 1]);
  w.positions.push_back(static_cast<int64_t>(first + limit - 2));
  return w;
}

TrainResult train_embedding_model(const std::vector<data::TrainingPair>& pairs, const TrainOptions& options) {
  Trainer t(pairs, options);
  return t.run();
}

}  // namespace embeval
