// The native BERT / XLM-R encoder on random checkpoints written by
// tests/checkpoint_writer.cpp. The independent value is a plain-loop float64
// forward pass written here from the transformers / sentence-transformers
// definitions (one text, no padding, no batching, no ATen); the encoder must
// agree with it to cosine >= 0.999999 for every pooling / Dense / Normalize
// variant, and must give the same vectors whatever the batch, order, loader
// format or weight-name prefix.
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness/error.h"
#include "runners/bert/bert_encoder.h"
#include "runners/encoder_factory.h"
#include "runners/checkpoint/safetensors_reader.h"
#include "tests/checkpoint_writer.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;
using test::TinyCheckpoint;

namespace {

// ---- float64 reference forward pass -------------------------------------

using Vec = std::vector<double>;

struct RefModel {
  std::map<std::string, Vec> w;
  std::map<std::string, std::vector<int64_t>> shape;
  nlohmann::json config;
  const Vec& get(const std::string& n) const {
    auto it = w.find(n);
    if (it == w.end()) throw std::runtime_error("reference: no tensor " + n);
    return it->second;
  }
};

void read_into(const fs::path& file, RefModel* m) {
  SafetensorsFile f(file);
  for (const auto& e : f.entries()) {
    Vec v(static_cast<size_t>(e.numel()));
    for (size_t i = 0; i < v.size(); ++i) {
      if (e.dtype == TENSOR_DTYPE_F32) {
        float x;
        std::memcpy(&x, e.data + 4 * i, 4);
        v[i] = x;
      } else {
        uint16_t x;
        std::memcpy(&x, e.data + 2 * i, 2);
        v[i] = e.dtype == TENSOR_DTYPE_F16 ? half_to_float(x) : bf16_to_float(x);
      }
    }
    m->w[e.name] = std::move(v);
    m->shape[e.name] = e.shape;
  }
}

// y[o] = b[o] + sum_i W[o, i] x[i]  (torch.nn.Linear)
Vec linear(const Vec& x, const Vec& W, const Vec* b, size_t out) {
  const size_t in = x.size();
  Vec y(out);
  for (size_t o = 0; o < out; ++o) {
    double s = b ? (*b)[o] : 0;
    for (size_t i = 0; i < in; ++i) s += W[o * in + i] * x[i];
    y[o] = s;
  }
  return y;
}

void layer_norm(Vec& x, const Vec& g, const Vec& b, double eps) {
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = (x[i] - mean) / std::sqrt(var + eps) * g[i] + b[i];
}

double act(double x, const std::string& name) {
  if (name == "relu") return x > 0 ? x : 0;
  if (name == "gelu_new") return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}

// Token states [t][h] of one unpadded sequence.
std::vector<Vec> ref_forward(const RefModel& m, const std::vector<int32_t>& ids, const std::string& p) {
  const auto& c = m.config;
  const size_t h = c["hidden_size"], heads = c["num_attention_heads"], ff = c["intermediate_size"];
  const size_t hd = h / heads, t = ids.size();
  const double eps = c["layer_norm_eps"];
  const bool xlmr = c["model_type"] == "xlm-roberta";
  const int64_t pad = c["pad_token_id"];
  std::vector<Vec> x(t, Vec(h));
  for (size_t i = 0; i < t; ++i) {
    const size_t pos = xlmr ? static_cast<size_t>(pad) + 1 + i : i;  // no padding inside a sequence
    for (size_t k = 0; k < h; ++k)
      x[i][k] = m.get(p + "embeddings.word_embeddings.weight")[static_cast<size_t>(ids[i]) * h + k] +
                m.get(p + "embeddings.token_type_embeddings.weight")[k] +
                m.get(p + "embeddings.position_embeddings.weight")[pos * h + k];
    layer_norm(x[i], m.get(p + "embeddings.LayerNorm.weight"), m.get(p + "embeddings.LayerNorm.bias"), eps);
  }
  for (int64_t l = 0; l < c["num_hidden_layers"].get<int64_t>(); ++l) {
    const std::string L = p + "encoder.layer." + std::to_string(l) + ".";
    std::vector<Vec> q(t), k(t), v(t);
    for (size_t i = 0; i < t; ++i) {
      q[i] = linear(x[i], m.get(L + "attention.self.query.weight"), &m.get(L + "attention.self.query.bias"), h);
      k[i] = linear(x[i], m.get(L + "attention.self.key.weight"), &m.get(L + "attention.self.key.bias"), h);
      v[i] = linear(x[i], m.get(L + "attention.self.value.weight"), &m.get(L + "attention.self.value.bias"), h);
    }
    std::vector<Vec> ctx(t, Vec(h, 0));
    for (size_t a = 0; a < heads; ++a)
      for (size_t i = 0; i < t; ++i) {
        Vec s(t);
        double mx = -1e300, z = 0;
        for (size_t j = 0; j < t; ++j) {
          double d = 0;
          for (size_t e = 0; e < hd; ++e) d += q[i][a * hd + e] * k[j][a * hd + e];
          s[j] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[j]);
        }
        for (size_t j = 0; j < t; ++j) z += (s[j] = std::exp(s[j] - mx));
        for (size_t j = 0; j < t; ++j)
          for (size_t e = 0; e < hd; ++e) ctx[i][a * hd + e] += s[j] / z * v[j][a * hd + e];
      }
    for (size_t i = 0; i < t; ++i) {
      Vec o = linear(ctx[i], m.get(L + "attention.output.dense.weight"), &m.get(L + "attention.output.dense.bias"), h);
      for (size_t e = 0; e < h; ++e) o[e] += x[i][e];
      layer_norm(o, m.get(L + "attention.output.LayerNorm.weight"), m.get(L + "attention.output.LayerNorm.bias"), eps);
      Vec f = linear(o, m.get(L + "intermediate.dense.weight"), &m.get(L + "intermediate.dense.bias"), ff);
      for (double& y : f) y = act(y, c["hidden_act"]);
      Vec y = linear(f, m.get(L + "output.dense.weight"), &m.get(L + "output.dense.bias"), h);
      for (size_t e = 0; e < h; ++e) y[e] += o[e];
      layer_norm(y, m.get(L + "output.LayerNorm.weight"), m.get(L + "output.LayerNorm.bias"), eps);
      x[i] = y;
    }
  }
  return x;
}

// sentence-transformers' Pooling / Dense / Normalize on one sequence;
// `skip` leading tokens are left out of the pooling mask (include_prompt false).
Vec ref_embed(const fs::path& dir, const std::vector<int32_t>& ids, size_t skip = 0, const std::string& prefix = "") {
  RefModel m;
  read_into(dir / "model.safetensors", &m);
  m.config = test::read_json(dir / "config.json");
  std::vector<Vec> x = ref_forward(m, ids, prefix);
  const size_t t = x.size(), h = x[0].size();
  nlohmann::json pc = test::read_json(dir / "1_Pooling" / "config.json");
  std::vector<double> mask(t, 1.0);
  for (size_t i = 0; i < std::min(skip, t); ++i) mask[i] = 0;
  Vec out;
  auto mean_like = [&](bool sqrt_len) {
    double n = 0;
    Vec s(h, 0);
    for (size_t i = 0; i < t; ++i) {
      n += mask[i];
      for (size_t e = 0; e < h; ++e) s[e] += mask[i] * x[i][e];
    }
    for (double& v : s) v /= sqrt_len ? std::sqrt(std::max(n, 1e-9)) : std::max(n, 1e-9);
    return s;
  };
  if (pc["pooling_mode_cls_token"]) out.insert(out.end(), x[0].begin(), x[0].end());
  if (pc["pooling_mode_max_tokens"]) {
    Vec mx(h, -1e9);
    for (size_t i = 0; i < t; ++i)
      for (size_t e = 0; e < h; ++e) mx[e] = std::max(mx[e], mask[i] ? x[i][e] : -1e9);
    out.insert(out.end(), mx.begin(), mx.end());
  }
  if (pc["pooling_mode_mean_tokens"]) {
    Vec s = mean_like(false);
    out.insert(out.end(), s.begin(), s.end());
  }
  if (pc["pooling_mode_mean_sqrt_len_tokens"]) {
    Vec s = mean_like(true);
    out.insert(out.end(), s.begin(), s.end());
  }
  if (pc["pooling_mode_weightedmean_tokens"]) {
    Vec s(h, 0);
    double n = 0;
    for (size_t i = 0; i < t; ++i) {
      n += mask[i] * static_cast<double>(i + 1);
      for (size_t e = 0; e < h; ++e) s[e] += mask[i] * static_cast<double>(i + 1) * x[i][e];
    }
    for (double& v : s) v /= n;
    out.insert(out.end(), s.begin(), s.end());
  }
  if (pc["pooling_mode_lasttoken"]) out.insert(out.end(), x[t - 1].begin(), x[t - 1].end());
  nlohmann::json modules = test::read_json(dir / "modules.json");
  for (const auto& mod : modules) {
    std::string type = mod["type"];
    if (type.find("Dense") != std::string::npos) {
      RefModel d;
      read_into(dir / "2_Dense" / "model.safetensors", &d);
      nlohmann::json dc = test::read_json(dir / "2_Dense" / "config.json");
      out = linear(out, d.get("linear.weight"), &d.get("linear.bias"), dc["out_features"]);
      std::string a = dc["activation_function"];
      for (double& v : out)
        v = a.find("Tanh") != std::string::npos ? std::tanh(v) : a.find("ReLU") != std::string::npos ? std::max(v, 0.0) : v;
    } else if (type.find("Normalize") != std::string::npos) {
      double n = 0;
      for (double v : out) n += v * v;
      for (double& v : out) v /= std::max(std::sqrt(n), 1e-12);
    }
  }
  return out;
}

// ---- helpers -------------------------------------------------------------

double cosine(const float* a, const Vec& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < b.size(); ++i) ab += a[i] * b[i], aa += double(a[i]) * a[i], bb += b[i] * b[i];
  return ab / std::sqrt(aa * bb);
}

double max_abs_diff(const float* a, const float* b, int64_t n) {
  double d = 0;
  for (int64_t i = 0; i < n; ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

std::unique_ptr<BertEncoder> open(const fs::path& dir, const TinyCheckpoint& c, RunnerOptions o = {}) {
  return std::make_unique<BertEncoder>(dir, o, test::make_char_tokenizer(c.vocab_size, c.model_type == "xlm-roberta"));
}

fs::path make(const std::string& name, const TinyCheckpoint& c) {
  fs::path dir = test::scratch_dir("bert/" + name);
  test::write_checkpoint(dir, c);
  return dir;
}

const std::vector<std::string> TEXTS = {"银行卡怎么挂失", "a", "今天天气很好，适合出去玩吗？我们一起去公园散步吧",
                                        "abc def", "  空白  ", "x y z w v u t s r q p o n m l k j i h g f e d c b a"};

}  // namespace

TEST(BertEncoder, MatchesFloat64ReferenceForEveryPipeline) {
  struct Case {
    const char* name;
    TinyCheckpoint c;
  };
  std::vector<Case> cases;
  auto add = [&](const char* name, auto edit) {
    TinyCheckpoint c;
    c.seed = static_cast<uint32_t>(cases.size() + 7);
    edit(c);
    cases.push_back({name, c});
  };
  add("mean", [](TinyCheckpoint&) {});
  add("cls_dense_tanh_norm", [](TinyCheckpoint& c) {
    c.pooling = {"cls"};
    c.dense_out = 24;
    c.dense_activation = "torch.nn.modules.activation.Tanh";
    c.normalize = true;
  });
  add("mean_norm_gelu_new", [](TinyCheckpoint& c) {
    c.normalize = true;
    c.hidden_act = "gelu_new";
  });
  add("max_relu", [](TinyCheckpoint& c) {
    c.pooling = {"max"};
    c.hidden_act = "relu";
  });
  add("sqrt_weighted_last", [](TinyCheckpoint& c) { c.pooling = {"mean_sqrt_len", "weighted_mean", "last_token"}; });
  add("cls_mean_dense_identity", [](TinyCheckpoint& c) {
    c.pooling = {"cls", "mean"};
    c.dense_out = 16;
  });
  add("xlmr", [](TinyCheckpoint& c) {
    c.model_type = "xlm-roberta";
    c.pad_token_id = 1;
    c.type_vocab_size = 1;
    c.max_position_embeddings = 66;
  });
  add("bf16_weights", [](TinyCheckpoint& c) { c.dtype = TENSOR_DTYPE_BF16; });
  for (const auto& k : cases) {
    fs::path dir = make(std::string("ref_") + k.name, k.c);
    auto enc = open(dir, k.c);
    Matrix m = enc->encode(TEXTS, EncodeOptions{});
    ASSERT_EQ(m.rows, static_cast<int64_t>(TEXTS.size()));
    for (size_t i = 0; i < TEXTS.size(); ++i) {
      Vec ref = ref_embed(dir, enc->token_ids(TEXTS[i], EncodeOptions{}));
      ASSERT_EQ(static_cast<int64_t>(ref.size()), enc->dim()) << k.name;
      double cos = cosine(m.row(static_cast<int64_t>(i)), ref);
      EXPECT_GE(cos, 0.999999) << k.name << " text " << i;
      double scale = 0;
      for (double v : ref) scale = std::max(scale, std::fabs(v));
      double diff = 0;
      for (size_t e = 0; e < ref.size(); ++e) diff = std::max(diff, std::fabs(m.row(int64_t(i))[e] - ref[e]));
      EXPECT_LE(diff, 1e-5 * std::max(1.0, scale)) << k.name << " text " << i;
    }
  }
}

TEST(BertEncoder, ShapesTokenCountsAndInfo) {
  TinyCheckpoint c;
  c.dense_out = 20;
  c.normalize = true;
  c.similarity_fn_name = "dot";
  c.max_seq_length = 16;
  fs::path dir = make("info", c);
  auto enc = open(dir, c);
  const EncoderInfo& info = enc->info();
  EXPECT_EQ(info.dim, 20);
  EXPECT_EQ(info.max_tokens, 16);
  EXPECT_EQ(info.similarity, SIMILARITY_DOT);
  EXPECT_EQ(info.dtype, "fp32");
  EXPECT_EQ(info.device, "cpu");
  EXPECT_EQ(info.spec, "hf:" + fs::weakly_canonical(dir).string() + ",fp32");
  EXPECT_EQ(info.fingerprint.rfind("sha256:", 0), 0u);
  // Parameters: embeddings (V + P + T) x H + 2H, per layer 4(H^2 + H) + 2(HF) + F + H + 4H, Dense 20 x 32 + 20.
  const int64_t H = 32, F = 64, V = 120, P = 64, T = 2;
  EXPECT_EQ(info.n_parameters, (V + P + T) * H + 2 * H + 2 * (4 * (H * H + H) + 2 * H * F + F + H + 4 * H) + 20 * 32 + 20);
  Matrix m = enc->encode(TEXTS, EncodeOptions{});
  EXPECT_EQ(m.rows, 6);
  EXPECT_EQ(m.cols, 20);
  int64_t tokens = 0;
  for (const auto& t : TEXTS) tokens += static_cast<int64_t>(enc->token_ids(t, EncodeOptions{}).size());
  EXPECT_EQ(enc->last_token_count(), tokens);
  for (int64_t r = 0; r < m.rows; ++r) {
    double n = 0;
    for (int64_t e = 0; e < m.cols; ++e) n += double(m.row(r)[e]) * m.row(r)[e];
    EXPECT_NEAR(std::sqrt(n), 1.0, 1e-5);
  }
  EXPECT_EQ(enc->encode({}, EncodeOptions{}).rows, 0);
  EXPECT_EQ(enc->last_token_count(), 0);
  // Fingerprint depends on the weights: a different seed changes it.
  TinyCheckpoint c2 = c;
  c2.seed = 99;
  EXPECT_NE(open(make("info2", c2), c2)->info().fingerprint, info.fingerprint);
  EXPECT_EQ(open(dir, c)->info().fingerprint, info.fingerprint);
}

TEST(BertEncoder, OrderRestoredAndBatchMatesDoNotMatter) {
  TinyCheckpoint c;
  c.pooling = {"cls", "max", "mean", "weighted_mean", "last_token"};
  fs::path dir = make("batching", c);
  auto alone = open(dir, c);
  std::vector<Matrix> singles;
  for (const auto& t : TEXTS) singles.push_back(alone->encode({t}, EncodeOptions{}));
  // Whole list in one padded batch; tiny batches; a token budget forcing one
  // text per batch; tokenized in chunks of 2 (the next chunk on a second thread).
  std::vector<RunnerOptions> variants(4);
  variants[1].batch_size = 2;
  variants[2].max_batch_tokens = 40;
  variants[3].tokenize_chunk = 2;
  variants[3].batch_size = 3;
  for (const RunnerOptions& o : variants) {
    auto enc = open(dir, c, o);
    std::vector<std::string> reversed(TEXTS.rbegin(), TEXTS.rend());
    Matrix m = enc->encode(reversed, EncodeOptions{});
    for (size_t i = 0; i < reversed.size(); ++i) {
      const Matrix& s = singles[TEXTS.size() - 1 - i];
      EXPECT_LE(max_abs_diff(m.row(int64_t(i)), s.row(0), m.cols), 2e-5) << "row " << i << " batch " << o.batch_size
                                                                 << " chunk " << o.tokenize_chunk;
    }
  }
}

TEST(BertEncoder, TruncatesToMaxLength) {
  TinyCheckpoint c;
  c.max_seq_length = 10;
  fs::path dir = make("trunc", c);
  auto enc = open(dir, c);
  const std::string long_text = "abcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(enc->token_ids(long_text, EncodeOptions{}).size(), 10u);
  Matrix a = enc->encode({long_text}, EncodeOptions{});
  EXPECT_EQ(enc->last_token_count(), 10);
  Matrix b = enc->encode({"abcdefgh"}, EncodeOptions{});  // what survives: 8 + [CLS] + [SEP]
  EXPECT_LE(max_abs_diff(a.row(0), b.row(0), a.cols), 1e-6);
  // --max-length overrides the model's length and shows in the spec.
  RunnerOptions o;
  o.max_length = 6;
  auto short_enc = open(dir, c, o);
  EXPECT_EQ(short_enc->token_ids(long_text, EncodeOptions{}).size(), 6u);
  EXPECT_NE(short_enc->info().spec.find(",maxlen=6"), std::string::npos);
  EXPECT_NE(short_enc->info().fingerprint, enc->info().fingerprint);
  o.max_length = 65;
  EXPECT_NE(test::error_of<UserError>([&] { open(dir, c, o); }).find("--max-length 65 exceeds the 64 positions"), std::string::npos);
}

TEST(BertEncoder, LoaderFormatsAndPrefixesGiveIdenticalVectors) {
  TinyCheckpoint base;
  base.pooling = {"cls"};
  Matrix ref = open(make("fmt_base", base), base)->encode(TEXTS, EncodeOptions{});
  for (const char* format : {"sharded", "bin"}) {
    for (const char* prefix : {"", "bert.", "model."}) {
      TinyCheckpoint c = base;
      c.format = format;
      c.prefix = prefix;
      fs::path dir = make(std::string("fmt_") + format + (*prefix ? prefix : "none"), c);
      auto enc = open(dir, c);
      Matrix m = enc->encode(TEXTS, EncodeOptions{});
      EXPECT_EQ(m.values, ref.values) << format << " " << prefix;
      EXPECT_NE(enc->describe()["weights"].get<std::string>().find(std::string(format) == "bin" ? "pytorch_model.bin"
                                                                                                 : "2 shards"),
                std::string::npos);
    }
  }
  // fp16 storage: the values are rounded, so close but not identical.
  TinyCheckpoint h = base;
  h.dtype = TENSOR_DTYPE_F16;
  Matrix m = open(make("fmt_f16", h), h)->encode(TEXTS, EncodeOptions{});
  for (int64_t r = 0; r < m.rows; ++r) {
    Vec v(ref.row(r), ref.row(r) + ref.cols);
    EXPECT_GE(cosine(m.row(r), v), 0.999);
  }
}

// mteb 1.39.7's order (mteb/models/wrapper.py get_prompt_name): "<task
// name>-<prompt type>", "<task name>", "<task type>-<prompt type>", "<task
// type>", "<prompt type>"; STS, PairClassification, Classification and
// Clustering encode with no prompt type, so only the task-name and task-type
// keys can apply to them; then sentence-transformers' default_prompt_name.
// Expectations worked out by hand from that rule.
TEST(BertEncoder, PromptLookupFollowsMteb) {
  TinyCheckpoint c;
  c.prompts_json = R"({"query": "q: ", "passage": "p: ", "LCQMC": "lcqmc: ", "T2Retrieval-query": "t2q: ",
                       "Retrieval-passage": "rp: ", "Retrieval": "r: ", "Clustering": "clu: ", "STS-query": "never: ",
                       "Ocnli-passage": "never2: "})";
  fs::path dir = make("prompt_lookup", c);
  auto enc = open(dir, c);
  auto o = [](Role r, const char* name, const char* type, const char* prompt = "") {
    EncodeOptions e;
    e.role = r;
    e.prompt = prompt;
    e.task_name = name;
    e.task_type = type;
    return e;
  };
  EXPECT_EQ(enc->prompt_used(o(ROLE_QUERY, "T2Retrieval", "Retrieval")), "t2q: ");     // task-query
  EXPECT_EQ(enc->prompt_used(o(ROLE_PASSAGE, "T2Retrieval", "Retrieval")), "rp: ");    // type-passage
  EXPECT_EQ(enc->prompt_used(o(ROLE_QUERY, "CMRC2018", "Retrieval")), "r: ");          // type beats "query"
  EXPECT_EQ(enc->prompt_used(o(ROLE_QUERY, "LCQMC", "Retrieval")), "lcqmc: ");        // task beats type-query
  EXPECT_EQ(enc->prompt_used(o(ROLE_NONE, "LCQMC", "STS")), "lcqmc: ");              // task, no prompt type
  EXPECT_EQ(enc->prompt_used(o(ROLE_NONE, "ATEC", "STS")), "");                      // no "STS-query", "query"
  EXPECT_EQ(enc->prompt_used(o(ROLE_NONE, "Ocnli", "PairClassification")), "");      // nor "Ocnli-passage"
  EXPECT_EQ(enc->prompt_used(o(ROLE_NONE, "CLS", "Clustering")), "clu: ");           // type
  EXPECT_EQ(enc->prompt_used(o(ROLE_QUERY, "Med", "Reranking")), "q: ");             // prompt type
  EXPECT_EQ(enc->prompt_used(o(ROLE_PASSAGE, "Med", "Reranking")), "p: ");
  EXPECT_EQ(enc->prompt_used(o(ROLE_NONE, "ATEC", "STS", "inst: ")), "inst: ");      // the task's own, last
  EXPECT_EQ(enc->prompt_used(o(ROLE_QUERY, "Med", "Reranking", "inst: ")), "q: ");
  // The flags override their own role only.
  RunnerOptions ro;
  ro.query_prompt = "Q! ";
  auto over = open(dir, c, ro);
  EXPECT_EQ(over->prompt_used(o(ROLE_QUERY, "T2Retrieval", "Retrieval")), "Q! ");
  EXPECT_EQ(over->prompt_used(o(ROLE_PASSAGE, "T2Retrieval", "Retrieval")), "rp: ");
  EXPECT_EQ(over->prompt_used(o(ROLE_NONE, "LCQMC", "STS")), "lcqmc: ");
  // Nothing found: default_prompt_name, as sentence-transformers applies it.
  TinyCheckpoint d = c;
  d.default_prompt_name = "passage";
  auto def = open(make("prompt_lookup_default", d), d);
  EXPECT_EQ(def->prompt_used(o(ROLE_NONE, "ATEC", "STS")), "p: ");
  EXPECT_EQ(def->prompt_used(o(ROLE_QUERY, "Med", "Reranking")), "q: ");
}

TEST(BertEncoder, PromptsAndIncludePrompt) {
  TinyCheckpoint c;
  c.prompts_json = R"({"query": "q: ", "passage": "p: "})";
  c.include_prompt = false;
  fs::path dir = make("prompts", c);
  auto enc = open(dir, c);
  EncodeOptions q{ROLE_QUERY, "", "", "", {}}, p{ROLE_PASSAGE, "", "", "", {}},
      task{ROLE_QUERY, "为这个句子生成表示：", "", "", {}};
  EXPECT_EQ(enc->prompt_used(q), "q: ");
  EXPECT_EQ(enc->prompt_used(p), "p: ");
  // The model's own prompt comes first (MTEB's lookup); a task's instruction
  // only where the model has none for the text set.
  EXPECT_EQ(enc->prompt_used(task), "q: ");
  EncodeOptions sts{ROLE_NONE, "为这个句子生成表示：", "", "", {}};
  EXPECT_EQ(enc->prompt_used(sts), "为这个句子生成表示：");
  RunnerOptions o;
  o.query_prompt = "";
  o.passage_prompt = "doc: ";
  auto over = open(dir, c, o);
  EXPECT_EQ(over->prompt_used(task), "");
  EXPECT_EQ(over->prompt_used(p), "doc: ");
  EXPECT_NE(over->info().fingerprint, enc->info().fingerprint);
  // The prompt is prepended (ids "q:" then the text) and, with include_prompt
  // false, [CLS] and the prompt tokens are left out of the mean.
  std::vector<int32_t> ids = enc->token_ids("abc", q);
  EXPECT_EQ(ids.size(), 2u + 2u + 3u);  // [CLS] q : a b c [SEP]
  Matrix m = enc->encode({"abc"}, q);
  Vec ref = ref_embed(dir, ids, /*skip=*/3);
  EXPECT_GE(cosine(m.row(0), ref), 0.999999);
  Vec with_prompt = ref_embed(dir, ids, 0);
  EXPECT_LT(cosine(m.row(0), with_prompt), 0.9999);  // the exclusion matters
}

TEST(BertEncoder, WithoutModulesJsonMeanPoolingAndANote) {
  TinyCheckpoint c;
  c.modules_json = false;
  fs::path dir = make("nomodules", c);
  auto enc = open(dir, c);
  EXPECT_EQ(enc->pipeline().pooling.modes, std::vector<PoolingMode>{POOLING_MEAN});
  EXPECT_FALSE(enc->pipeline().normalizes());
  EXPECT_NE(enc->describe()["notes"][0].get<std::string>().find("no modules.json"), std::string::npos);
  // Same weights with an explicit mean-pooling modules.json give the same vectors.
  TinyCheckpoint with = c;
  with.modules_json = true;
  Matrix a = enc->encode(TEXTS, EncodeOptions{});
  Matrix b = open(make("withmodules", with), with)->encode(TEXTS, EncodeOptions{});
  EXPECT_EQ(a.values, b.values);
}

TEST(BertEncoder, BadCheckpointsAreOneLineErrorsNamingFileAndTensor) {
  TinyCheckpoint c;
  c.dense_out = 8;
  auto expect = [&](const std::string& name, auto edit, const std::string& fragment) {
    fs::path dir = make("bad_" + name, c);
    edit(dir);
    std::string e = test::error_of<UserError>([&] { open(dir, c); });
    EXPECT_NE(e.find(fragment), std::string::npos) << name << ": " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  auto edit_json = [](const fs::path& f, auto change) {
    nlohmann::json j = test::read_json(f);
    change(j);
    test::write_file(f, j.dump());
  };
  auto drop_tensor = [](const fs::path& f, const std::string& name) {
    std::vector<SafetensorsTensor> keep;
    {
      SafetensorsFile r(f);
      for (const auto& e : r.entries())
        if (e.name != name)
          keep.push_back({e.name, e.dtype, e.shape, std::string(reinterpret_cast<const char*>(e.data), e.nbytes)});
    }
    write_safetensors(f, keep);
  };
  // Rewrites one tensor with another dtype (and zero bytes of that dtype's width).
  auto retype_tensor = [](const fs::path& f, const std::string& name, TensorDtype dtype, size_t width) {
    std::vector<SafetensorsTensor> all;
    {
      SafetensorsFile r(f);
      for (const auto& e : r.entries()) {
        std::string bytes(reinterpret_cast<const char*>(e.data), e.nbytes);
        if (e.name == name) bytes.assign(e.nbytes / 4 * width, '\0');
        all.push_back({e.name, e.name == name ? dtype : e.dtype, e.shape, bytes});
      }
    }
    write_safetensors(f, all);
  };
  // A required tensor of a dtype embeval does not read is named with its dtype, not called missing.
  expect("int_tensor", [&](const fs::path& d) {
    retype_tensor(d / "model.safetensors", "encoder.layer.0.attention.self.key.bias", TENSOR_DTYPE_I32, 4);
  }, "model.safetensors: tensor \"encoder.layer.0.attention.self.key.bias\" has dtype I32; embeval reads weights in F32, F16 and BF16");
  expect("f64_tensor", [&](const fs::path& d) {
    retype_tensor(d / "model.safetensors", "embeddings.word_embeddings.weight", TENSOR_DTYPE_F64, 8);
  }, "model.safetensors: tensor \"embeddings.word_embeddings.weight\" has dtype F64");
  expect("f64_dense", [&](const fs::path& d) { retype_tensor(d / "2_Dense/model.safetensors", "linear.weight", TENSOR_DTYPE_F64, 8); },
         "2_Dense/model.safetensors: tensor \"linear.weight\" has dtype F64");
  {  // ... while an unused head in F64 (the pooler) is ignored like the rest of the head.
    fs::path dir = make("f64_pooler", c);
    retype_tensor(dir / "model.safetensors", "pooler.dense.bias", TENSOR_DTYPE_F64, 8);
    fs::path ref = make("f64_pooler_ref", c);
    std::vector<std::string> texts = {"unused head", "另一句"};
    Matrix got = open(dir, c)->encode(texts, EncodeOptions{}), want = open(ref, c)->encode(texts, EncodeOptions{});
    ASSERT_EQ(got.values.size(), want.values.size());
    EXPECT_EQ(got.values, want.values);
  }
  // A NaN or an infinity in a weight the model uses is refused at load: the
  // attention's softmax would turn a NaN query into finite, wrong vectors.
  auto poison = [](const fs::path& f, const std::string& name, size_t element, float value) {
    std::vector<SafetensorsTensor> all;
    {
      SafetensorsFile r(f);
      for (const auto& e : r.entries()) {
        std::string bytes(reinterpret_cast<const char*>(e.data), e.nbytes);
        if (e.name == name) {
          ASSERT_EQ(e.dtype, TENSOR_DTYPE_F32);
          std::memcpy(bytes.data() + 4 * element, &value, 4);
        }
        all.push_back({e.name, e.dtype, e.shape, bytes});
      }
    }
    write_safetensors(f, all);
  };
  expect("nan_bias", [&](const fs::path& d) {
    poison(d / "model.safetensors", "encoder.layer.0.attention.self.query.bias", 1, std::nanf(""));
  }, "model.safetensors: tensor \"encoder.layer.0.attention.self.query.bias\" has NaN or infinite values");
  expect("inf_layernorm", [&](const fs::path& d) {
    poison(d / "model.safetensors", "encoder.layer.1.output.LayerNorm.weight", 3, -INFINITY);
  }, "model.safetensors: tensor \"encoder.layer.1.output.LayerNorm.weight\" has NaN or infinite values");
  expect("nan_dense", [&](const fs::path& d) { poison(d / "2_Dense/model.safetensors", "linear.weight", 0, std::nanf("")); },
         "2_Dense/model.safetensors: tensor \"linear.weight\" has NaN or infinite values");
  // In fp16 and bf16 checkpoints too (fp16 takes another path: no CPU
  // aminmax for it in libtorch 1.13).
  for (const auto& [dtype, bits] : {std::pair{TENSOR_DTYPE_F16, uint16_t{0x7e00}}, std::pair{TENSOR_DTYPE_BF16, uint16_t{0xff80}}}) {
    TinyCheckpoint half = c;
    half.dtype = dtype;
    const fs::path dir = make(dtype == TENSOR_DTYPE_F16 ? "nan_f16" : "ninf_bf16", half);
    std::vector<SafetensorsTensor> all;
    {
      SafetensorsFile r(dir / "model.safetensors");
      for (const auto& e : r.entries()) {
        std::string bytes(reinterpret_cast<const char*>(e.data), e.nbytes);
        if (e.name == "encoder.layer.1.intermediate.dense.weight") {
          ASSERT_EQ(e.dtype, dtype);
          std::memcpy(bytes.data() + 2 * 17, &bits, 2);  // NaN in fp16, -inf in bf16
        }
        all.push_back({e.name, e.dtype, e.shape, bytes});
      }
    }
    write_safetensors(dir / "model.safetensors", all);
    const std::string e = test::error_of<UserError>([&] { open(dir, half); });
    EXPECT_NE(e.find("tensor \"encoder.layer.1.intermediate.dense.weight\" has NaN or infinite values"), std::string::npos)
        << e;
    EXPECT_NO_THROW(open(make(dtype == TENSOR_DTYPE_F16 ? "ok_f16" : "ok_bf16", half), half));
  }
  {  // ... but not in the unused pooler head.
    fs::path dir = make("nan_pooler", c);
    poison(dir / "model.safetensors", "pooler.dense.bias", 0, std::nanf(""));
    EXPECT_NO_THROW(open(dir, c)->encode({"unused head"}, EncodeOptions{}));
  }
  expect("missing_tensor", [&](const fs::path& d) { drop_tensor(d / "model.safetensors", "encoder.layer.1.output.dense.bias"); },
         "model.safetensors: missing tensor \"encoder.layer.1.output.dense.bias\"");
  expect("missing_dense", [&](const fs::path& d) { drop_tensor(d / "2_Dense/model.safetensors", "linear.weight"); },
         "2_Dense/model.safetensors: missing tensor \"linear.weight\"");
  expect("truncated", [](const fs::path& d) { fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") - 100); },
         "model.safetensors: tensor \"embeddings.position_ids\": data_offsets");
  expect("no_weights", [](const fs::path& d) { fs::remove(d / "model.safetensors"); }, "no weights; expected one of model.safetensors");
  expect("no_hidden", [&](const fs::path& d) { edit_json(d / "config.json", [](auto& j) { j.erase("hidden_size"); }); },
         "config.json: missing \"hidden_size\"; expected an integer");
  expect("model_type", [&](const fs::path& d) { edit_json(d / "config.json", [](auto& j) { j["model_type"] = "gpt2"; }); },
         "config.json: model_type \"gpt2\" is not supported; embeval runs bert, xlm-roberta");
  expect("act", [&](const fs::path& d) { edit_json(d / "config.json", [](auto& j) { j["hidden_act"] = "swish"; }); },
         "config.json: field \"hidden_act\" is \"swish\"");
  expect("shape", [&](const fs::path& d) { edit_json(d / "config.json", [](auto& j) { j["intermediate_size"] = 48; }); },
         "tensor \"encoder.layer.0.intermediate.dense.weight\" has shape [64, 32]; config.json implies [48, 32]");
  expect("heads", [&](const fs::path& d) { edit_json(d / "config.json", [](auto& j) { j["num_attention_heads"] = 5; }); },
         "hidden_size\" 32 is not a multiple of num_attention_heads 5");
  expect("modules", [&](const fs::path& d) {
    edit_json(d / "modules.json", [](auto& j) { j[1]["type"] = "sentence_transformers.models.CNN"; });
  }, "modules.json: module 1 has type \"sentence_transformers.models.CNN\"");
  expect("dense_in", [&](const fs::path& d) { edit_json(d / "2_Dense/config.json", [](auto& j) { j["in_features"] = 31; }); },
         "2_Dense/config.json: in_features 31; the previous module outputs 32");
  expect("pooling", [&](const fs::path& d) {
    edit_json(d / "1_Pooling/config.json", [](auto& j) { j["pooling_mode_mean_tokens"] = "yes"; });
  }, "1_Pooling/config.json: field \"pooling_mode_mean_tokens\" must be true or false, got string");
  expect("bin_legacy", [](const fs::path& d) {
    fs::remove(d / "model.safetensors");
    test::write_file(d / "pytorch_model.bin", "\x80\x02}q\x00.");
  }, "pytorch_model.bin: not a torch.save zip archive");

  {  // A vocab.txt longer than the embedding table: caught per text, naming the config.
    fs::path dir = make("bad_vocab_size", c);
    std::ofstream(dir / "vocab.txt", std::ios::app) << "zz\n";  // id vocab_size
    BertEncoder enc(dir, RunnerOptions{}, nullptr);
    EXPECT_EQ(enc.encode({"t5 t6"}, EncodeOptions{}).rows, 1);  // ids inside the table are fine
    std::string e = test::error_of<UserError>([&] { enc.encode({"t5 zz"}, EncodeOptions{}); });
    EXPECT_NE(e.find(fmt::format("token id {} of text \"t5 zz\" is outside the embedding table (vocab_size {} in {})",
                                 c.vocab_size, c.vocab_size, (dir / "config.json").string())),
              std::string::npos)
        << e;
  }

  // Options.
  fs::path dir = make("bad_options", c);
  RunnerOptions o;
  o.dtype = "fp16";
  EXPECT_NE(test::error_of<UserError>([&] { open(dir, c, o); }).find("--dtype fp16 is not supported on cpu"), std::string::npos);
  o.dtype = "int3";
  EXPECT_NE(test::error_of<UserError>([&] { open(dir, c, o); }).find("unknown dtype \"int3\""), std::string::npos);
  o.dtype = "";
  o.device = "tpu";
  EXPECT_NE(test::error_of<UserError>([&] { open(dir, c, o); }).find("unknown device \"tpu\"; expected cpu, cuda or cuda:N"),
            std::string::npos);
}

TEST(BertEncoder, Bfloat16OnCpuStaysClose) {
  TinyCheckpoint c;
  fs::path dir = make("bf16", c);
  Matrix f32 = open(dir, c)->encode(TEXTS, EncodeOptions{});
  RunnerOptions o;
  o.dtype = "bf16";
  auto enc = open(dir, c, o);
  EXPECT_EQ(enc->info().dtype, "bf16");
  EXPECT_NE(enc->info().spec.find(",bf16"), std::string::npos);
  Matrix b = enc->encode(TEXTS, EncodeOptions{});
  for (int64_t r = 0; r < b.rows; ++r) EXPECT_GE(cosine(b.row(r), Vec(f32.row(r), f32.row(r) + f32.cols)), 0.99) << r;
}

TEST(EncoderFactory, RunnerTokensMergeWithFlags) {
  RunnerOptions flags;
  RunnerOptions o = parse_runner_tokens("s", {"fp16", "cuda:1", "maxlen=128", "batch=8", "tokens=4096"}, flags);
  EXPECT_EQ(o.dtype, "fp16");
  EXPECT_EQ(o.device, "cuda:1");
  EXPECT_EQ(o.max_length, 128);
  EXPECT_EQ(o.batch_size, 8);
  EXPECT_EQ(o.max_batch_tokens, 4096);
  flags.dtype = "bfloat16";
  EXPECT_EQ(parse_runner_tokens("s", {"bf16"}, flags).dtype, "bf16");  // same setting twice is fine
  EXPECT_EQ(test::error_of<UserError>([&] { parse_runner_tokens("d,fp16", {"fp16"}, flags); }),
            "could not parse model spec \"d,fp16\": dtype fp16 contradicts dtype bf16");
  EXPECT_EQ(test::error_of<UserError>([&] { parse_runner_tokens("d,fp6", {"fp6"}, RunnerOptions{}); }),
            "could not parse model spec \"d,fp6\": unknown token \"fp6\"; did you mean fp16?; known tokens: fp32, "
            "fp16, bf16, cpu, cuda[:N], maxlen=N, batch=N, tokens=N, a quantization method (wo-int8, wo-int4-g128, "
            "w8a8, ...), fakequant");
  EXPECT_NE(test::error_of<UserError>([&] { parse_runner_tokens("d,maxlen=x", {"maxlen=x"}, RunnerOptions{}); })
                .find("\"maxlen=x\" needs a positive integer"),
            std::string::npos);
  EXPECT_NE(test::error_of<UserError>([&] { make_encoder("hf:/nonexistent/model,fp16"); }).find("/nonexistent/model is not a folder"),
            std::string::npos);
}

// What the CLI asks before loading: which method a spec names (to calibrate
// it), and whether the spec and the flags agree.
TEST(EncoderFactory, SpecOptionsReadTheTokensWithoutLoading) {
  const fs::path dir = fs::temp_directory_path() / "embeval-spec-options";
  fs::create_directories(dir);
  const std::string d = dir.string();
  RunnerOptions flags;
  RunnerOptions o = spec_options("hf:" + d + ",bf16,awq-int4-g64", flags);
  EXPECT_EQ(o.dtype, "bf16");
  EXPECT_EQ(o.quant, "awq-int4-g64");
  EXPECT_EQ(spec_options(d + ",sq-w8a8-a0.50", flags).quant, "sq-w8a8-a0.5");  // a bare folder; canonical name
  EXPECT_EQ(spec_options("bert:" + d, flags).quant, "");
  EXPECT_EQ(spec_options("baseline:char-ngram", flags).quant, "");
  EXPECT_EQ(spec_options("/no/such/folder,wo-int8", flags).quant, "");  // not a model: make_encoder says so
  flags.quant = "wo-int8";
  EXPECT_EQ(spec_options("hf:" + d + ",wo-int8", flags).quant, "wo-int8");  // the same method twice
  EXPECT_EQ(test::error_of<UserError>([&] { spec_options("hf:" + d + ",awq-int4-g64", flags); }),
            "could not parse model spec \"hf:" + d + ",awq-int4-g64\": quantization awq-int4-g64 contradicts "
            "quantization wo-int8");
  EXPECT_NE(test::error_of<UserError>([&] { spec_options("baseline:char-ngram", flags); })
                .find("--quant applies to checkpoint folders"),
            std::string::npos);
}
