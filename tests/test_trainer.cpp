// embeval train (runners/train/contrastive_trainer.h) on a tiny model and a
// small synthetic set of pairs: the loss falls, hard negatives are re-mined
// (Conan's rule fires), the same seed gives the same weights byte for byte,
// and the folder it writes loads through the normal loader and encodes as
// the trainer's own model does.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "datasets/training_pairs.h"
#include "harness/error.h"
#include "harness/fidelity.h"
#include "runners/bert/bert_encoder.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/train/contrastive_trainer.h"
#include "runners/train/inverse_cloze.h"
#include "runners/train/trainable_bert.h"
#include "test_util.h"

using namespace embeval;
namespace fs = std::filesystem;

namespace {

// Pairs whose query and positive share a topic word; negatives from other topics.
std::vector<data::TrainingPair> synthetic_pairs() {
  const std::vector<std::string> topics = {"苹果", "银行", "足球", "医生", "火车", "电脑", "天气", "音乐",
                                           "学校", "手机", "咖啡", "电影", "股票", "城市", "汽车", "小说"};
  const std::vector<std::string> frames = {"我想了解{}的情况", "{}怎么样", "关于{}的问题", "{}有什么推荐", "请介绍一下{}"};
  std::vector<data::TrainingPair> out;
  for (size_t t = 0; t < topics.size(); ++t)
    for (size_t f = 0; f < frames.size(); ++f) {
      auto fill = [&](const std::string& frame, const std::string& topic) {
        std::string s = frame;
        s.replace(s.find("{}"), 2, topic);
        return s;
      };
      data::TrainingPair p;
      p.query = fill(frames[f], topics[t]);
      p.positive = fill(frames[(f + 1) % frames.size()], topics[t]) + "吗";
      p.negatives = {fill(frames[f], topics[(t + 1) % topics.size()])};
      p.kind = t % 4 == 3 ? "qa" : "paraphrase";
      out.push_back(p);
    }
  return out;
}

TrainOptions tiny_options(const fs::path& out) {
  TrainOptions o;
  o.model.hidden = 32;
  o.model.layers = 1;
  o.model.heads = 2;
  o.model.ffn = 64;
  o.model.max_positions = 64;
  o.vocab = test::data_path("tokenizer/bert-base-chinese-vocab.txt");
  o.out = out;
  o.steps = 40;
  o.batch = 16;
  o.max_length = 24;
  o.lr = 3e-3;
  o.warmup = 0.1;
  o.hard_negatives = 2;
  o.mine_every = 4;
  o.mine_pool = 64;
  o.mlm_steps = 3;
  o.seed = 5;
  o.half = false;
  return o;
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  return std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(to), 0.0) /
         static_cast<double>(to - from);
}

std::string bytes_of(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(Trainer, LossFallsNegativesAreReminedAndTheSeedFixesTheWeights) {
  torch::set_num_threads(1);
  const fs::path root = test::scratch_dir("trainer");
  const std::vector<data::TrainingPair> pairs = synthetic_pairs();
  const TrainResult a = train_embedding_model(pairs, tiny_options(root / "a"));
  ASSERT_EQ(a.losses.size(), 40u);
  EXPECT_EQ(a.mlm_losses.size(), 3u);
  EXPECT_LT(mean(a.losses, 30, 40), 0.6 * mean(a.losses, 0, 10))
      << "first " << mean(a.losses, 0, 10) << ", last " << mean(a.losses, 30, 40);
  std::printf("loss %.3f -> %.3f; mined %ld checked, %ld replaced\n", mean(a.losses, 0, 10), mean(a.losses, 30, 40),
              static_cast<long>(a.checked), static_cast<long>(a.replaced));
  EXPECT_GT(a.checked, 0);
  EXPECT_GT(a.replaced, 0) << "no hard negative was re-mined in " << a.checked << " checks";
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "modules.json",
                        "1_Pooling/config.json", "train_log.jsonl", "README.md"})
    EXPECT_TRUE(fs::exists(root / "a" / f)) << f;
  EXPECT_FALSE(fs::exists(root / "a.partial"));
  // The log has a mining record with replacements.
  std::ifstream log(root / "a" / "train_log.jsonl");
  std::string line;
  bool mined = false;
  while (std::getline(log, line)) mined |= line.find("\"replaced\":") != std::string::npos && line.find("\"replaced\":0") == std::string::npos;
  EXPECT_TRUE(mined);

  const TrainResult b = train_embedding_model(pairs, tiny_options(root / "b"));
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(bytes_of(root / "a" / "model.safetensors"), bytes_of(root / "b" / "model.safetensors"));
  TrainOptions other = tiny_options(root / "c");
  other.seed = 6;
  train_embedding_model(pairs, other);
  EXPECT_NE(bytes_of(root / "a" / "model.safetensors"), bytes_of(root / "c" / "model.safetensors"));
  EXPECT_THROW(train_embedding_model(pairs, tiny_options(root / "a")), UserError);  // the folder exists
  // The two-way loss trains too, and is a different loss.
  TrainOptions sym = tiny_options(root / "s");
  sym.symmetric = true;
  const TrainResult s = train_embedding_model(pairs, sym);
  EXPECT_LT(mean(s.losses, 30, 40), 0.6 * mean(s.losses, 0, 10));
  EXPECT_NE(s.losses, a.losses);
  TrainOptions bad = tiny_options(root / "d");
  bad.model.dropout = 1;
  EXPECT_THROW(train_embedding_model(pairs, bad), UserError);
  EXPECT_FALSE(fs::exists(root / "d"));
}

TEST(Trainer, TheSavedFolderEncodesAsTheTrainersModel) {
  torch::set_num_threads(1);
  const fs::path root = test::scratch_dir("trainer-parity");
  TrainOptions o = tiny_options(root / "m");
  o.steps = 5;
  o.mlm_steps = 0;
  o.half = true;  // the shipped form: the loader reads float16 weights
  o.passage_max_length = 40;  // qa passages keep more tokens; the model's max_seq_length is the larger
  train_embedding_model(synthetic_pairs(), o);
  // The trainer's own model with the saved (float16-rounded) weights.
  TrainableBertConfig c = o.model;
  c.vocab_size = 21128;
  TrainableBert model(c);
  const StateDict sd = load_state_dict(root / "m");
  std::map<std::string, torch::Tensor> w(sd.tensors.begin(), sd.tensors.end());
  model->load_hf_state_dict(w);
  model->eval();
  BertEncoder encoder(root / "m", RunnerOptions());
  EXPECT_EQ(encoder.max_length(), 40);
  const std::vector<std::string> texts = {"苹果手机怎么样", "银行的问题", "a", "今天天气很好，适合去公园散步。"};
  EncodeOptions eo;
  const Matrix got = encoder.encode(texts, eo);
  Matrix want(static_cast<int64_t>(texts.size()), c.hidden);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int32_t> ids = encoder.token_ids(texts[i], eo);
    torch::Tensor input = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0);
    torch::NoGradGuard g;
    const torch::Tensor e = model->embed(input, torch::ones_like(input)).to(torch::kFloat).contiguous();
    std::copy(e.data_ptr<float>(), e.data_ptr<float>() + c.hidden, want.row(static_cast<int64_t>(i)));
  }
  EXPECT_GT(compare_rows(want, got).min_cosine, 0.99999);
}

TEST(Trainer, TokenWindowKeepsPositionsAndTheEnds) {
  // [CLS]=101 pieces 1..8 [SEP]=102: ten tokens.
  const std::vector<int32_t> text = {101, 1, 2, 3, 4, 5, 6, 7, 8, 102};
  TokenWindow w = token_window(text, 5, 1);  // as the tokenizer truncates
  EXPECT_EQ(w.ids, (std::vector<int32_t>{101, 1, 2, 3, 102}));
  EXPECT_EQ(w.positions, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  w = token_window(text, 5, 4);
  EXPECT_EQ(w.ids, (std::vector<int32_t>{101, 4, 5, 6, 102}));
  EXPECT_EQ(w.positions, (std::vector<int64_t>{0, 4, 5, 6, 7}));
  w = token_window(text, 5, 6);  // the last window that fits: pieces 6..8, [SEP] where it is in the text
  EXPECT_EQ(w.ids, (std::vector<int32_t>{101, 6, 7, 8, 102}));
  EXPECT_EQ(w.positions, (std::vector<int64_t>{0, 6, 7, 8, 9}));
  EXPECT_THROW(token_window(text, 5, 7), UserError);
  EXPECT_THROW(token_window(text, 5, 0), UserError);
  w = token_window(text, 12, 3);  // fits: the whole text
  EXPECT_EQ(w.ids, text);
  EXPECT_EQ(w.positions, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Trainer, PassageWindowsTrainPositionsBeyondThePassageLength) {
  torch::set_num_threads(1);
  const fs::path root = test::scratch_dir("trainer-windows");
  // Long passages: each qa positive padded to ~60 characters with its topic.
  std::vector<data::TrainingPair> pairs = synthetic_pairs();
  for (data::TrainingPair& p : pairs)
    if (p.kind == "qa")
      while (p.positive.size() < 180) p.positive += p.query;  // UTF-8: 3 bytes a character
  auto options = [&](const fs::path& out, int64_t positions) {
    TrainOptions o = tiny_options(out);
    o.steps = 12;
    o.mlm_steps = 0;
    o.max_length = 16;
    o.passage_max_length = 20;
    o.passage_positions = positions;
    return o;
  };
  train_embedding_model(pairs, options(root / "cut", 0));
  train_embedding_model(pairs, options(root / "win", 60));
  // Both start from the same weights (same seed, same table of 64
  // positions). Cut at their start, no text reaches position 20, so those
  // rows only decay (AdamW) alike in both; windows train them.
  const StateDict cut = load_state_dict(root / "cut"), win = load_state_dict(root / "win");
  const torch::Tensor pc = cut.tensors.at("embeddings.position_embeddings.weight").to(torch::kFloat);
  const torch::Tensor pw = win.tensors.at("embeddings.position_embeddings.weight").to(torch::kFloat);
  ASSERT_EQ(pc.size(0), 64);
  const torch::Tensor moved = (pw - pc).abs().amax(1);  // per position
  int64_t trained = 0;
  for (int64_t i = 20; i < 60; ++i) trained += moved[i].item<float>() > 1e-4;
  EXPECT_GE(trained, 30) << "positions 20..59 trained by the windows: " << trained;
  EXPECT_LT(moved.narrow(0, 60, 4).max().item<float>(), 1e-6) << "nothing reaches positions 60..63";
  // The saved model reads 60 tokens; the cut one 20.
  std::ifstream sb(root / "win" / "sentence_bert_config.json");
  EXPECT_NE(std::string(std::istreambuf_iterator<char>(sb), {}).find("\"max_seq_length\": 60"), std::string::npos);
  TrainOptions bad = options(root / "bad", 20);  // not longer than the passages
  EXPECT_THROW(train_embedding_model(pairs, bad), UserError);
}

TEST(Trainer, InverseClozePairsAreOneMoreKind) {
  torch::set_num_threads(1);
  const fs::path root = test::scratch_dir("trainer-ict");
  TrainOptions o = tiny_options(root / "m");
  o.mlm_steps = 0;
  o.proportions = {{"paraphrase", 0.5}, {"qa", 0.25}, {"ict", 0.25}};
  // The synthetic qa positives are one sentence each: nothing to make pairs of.
  EXPECT_THROW(train_embedding_model(synthetic_pairs(), o), UserError);
  EXPECT_FALSE(fs::exists(root / "m"));
  EXPECT_FALSE(fs::exists(root / "m.partial")) << "a failed run left its half-written folder";
  // Passages of three sentences: the positive, the query and a sentence on the topic.
  std::vector<data::TrainingPair> pairs = synthetic_pairs();
  for (data::TrainingPair& p : pairs)
    if (p.kind == "qa") p.positive += "。" + p.query + "。这一段说的是" + p.query.substr(0, 6) + "的事情。";
  InverseClozeOptions io;
  io.seed = o.seed;
  const size_t made = inverse_cloze_pairs(pairs, io).size();
  ASSERT_GT(made, 0u);
  const TrainResult r = train_embedding_model(pairs, o);
  EXPECT_EQ(r.pairs, static_cast<int64_t>(pairs.size() + made));
  EXPECT_LT(mean(r.losses, 30, 40), 0.6 * mean(r.losses, 0, 10));
  std::ifstream log(root / "m" / "train_log.jsonl");
  std::string line;
  int with_ict = 0;
  while (std::getline(log, line)) with_ict += line.find("\"ict\":") != std::string::npos;
  EXPECT_GT(with_ict, 0) << "no loss of the ict kind in the log";
  std::ifstream card(root / "m" / "README.md");
  const std::string text(std::istreambuf_iterator<char>(card), {});
  EXPECT_NE(text.find(std::to_string(made) + " inverse-cloze pairs"), std::string::npos) << text;
  EXPECT_NE(text.find("| ict | " + std::to_string(made) + " |"), std::string::npos) << text;
}
