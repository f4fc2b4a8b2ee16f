// torchscript:FILE — a module called as (input_ids, attention_mask). The
// modules here are written in TorchScript source from transformers'
// BertModel definition (not from embeval's code), over the weights of a
// random checkpoint, and saved with Module::save as torch.jit.save would.
// The independent check: the same checkpoint run natively (hf:DIR) gives
// the same vectors (max |diff| 1e-5, fp32), whether the module returns
// token states (the folder's pooling runs after it), a tuple of them, or
// pooled sentence vectors.
#include <fstream>

#include <gtest/gtest.h>
#include <torch/script.h>

#include "harness/error.h"
#include "runners/bert/bert_encoder.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/encoder_factory.h"
#include "runners/torch_runtime.h"
#include "tests/checkpoint_writer.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

// BERT in TorchScript: embeddings -> LayerNorm -> layers of attention + FFN
// (post-LayerNorm, exact GELU), weights stacked per layer. `tail` is the
// return statement, over the final states x [b, t, h] and the mask.
std::string bert_source(const std::string& tail) {
  return R"(
def forward(self, input_ids: Tensor, attention_mask: Tensor):
    b = input_ids.size(0)
    t = input_ids.size(1)
    pos = torch.arange(t, device=input_ids.device).unsqueeze(0).expand(b, t)
    x = torch.embedding(self.word, input_ids) + self.type0 + torch.embedding(self.pos, pos)
    x = torch.layer_norm(x, [self.hidden], self.ln_w, self.ln_b, self.eps)
    add = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -3.4028234663852886e38
    for i in range(self.layers):
        q = (torch.matmul(x, self.qw[i].t()) + self.qb[i]).view(b, t, self.heads, self.d).transpose(1, 2)
        k = (torch.matmul(x, self.kw[i].t()) + self.kb[i]).view(b, t, self.heads, self.d).transpose(1, 2)
        v = (torch.matmul(x, self.vw[i].t()) + self.vb[i]).view(b, t, self.heads, self.d).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) * self.scale + add
        c = torch.matmul(torch.softmax(s, -1), v).transpose(1, 2).reshape(b, t, self.hidden)
        x = torch.layer_norm(torch.matmul(c, self.ow[i].t()) + self.ob[i] + x, [self.hidden], self.l1w[i], self.l1b[i], self.eps)
        y = torch.gelu(torch.matmul(x, self.iw[i].t()) + self.ib[i])
        x = torch.layer_norm(torch.matmul(y, self.fw[i].t()) + self.fb[i] + x, [self.hidden], self.l2w[i], self.l2b[i], self.eps)
    m = attention_mask.unsqueeze(-1).to(x.dtype)
)" + tail + "\n";
}

void write_module(const fs::path& dir, const test::TinyCheckpoint& c, const std::string& tail, const fs::path& out) {
  StateDict w = load_state_dict(dir);
  auto get = [&](const std::string& n) { return w.tensors.at(n).to(at::kFloat); };
  auto stack = [&](const std::string& suffix) {
    std::vector<at::Tensor> parts;
    for (int64_t i = 0; i < c.num_layers; ++i) parts.push_back(get("encoder.layer." + std::to_string(i) + "." + suffix));
    return at::stack(parts);
  };
  torch::jit::Module mod("TinyBert");
  mod.register_buffer("word", get("embeddings.word_embeddings.weight"));
  mod.register_buffer("pos", get("embeddings.position_embeddings.weight"));
  mod.register_buffer("type0", get("embeddings.token_type_embeddings.weight")[0].clone());
  mod.register_buffer("ln_w", get("embeddings.LayerNorm.weight"));
  mod.register_buffer("ln_b", get("embeddings.LayerNorm.bias"));
  const std::pair<const char*, const char*> per_layer[] = {
      {"qw", "attention.self.query.weight"},    {"qb", "attention.self.query.bias"},
      {"kw", "attention.self.key.weight"},      {"kb", "attention.self.key.bias"},
      {"vw", "attention.self.value.weight"},    {"vb", "attention.self.value.bias"},
      {"ow", "attention.output.dense.weight"},  {"ob", "attention.output.dense.bias"},
      {"l1w", "attention.output.LayerNorm.weight"}, {"l1b", "attention.output.LayerNorm.bias"},
      {"iw", "intermediate.dense.weight"},      {"ib", "intermediate.dense.bias"},
      {"fw", "output.dense.weight"},            {"fb", "output.dense.bias"},
      {"l2w", "output.LayerNorm.weight"},       {"l2b", "output.LayerNorm.bias"}};
  for (const auto& [name, suffix] : per_layer) mod.register_buffer(name, stack(suffix));
  const int64_t d = c.hidden_size / c.num_heads;
  mod.register_attribute("hidden", c10::IntType::get(), c.hidden_size);
  mod.register_attribute("layers", c10::IntType::get(), c.num_layers);
  mod.register_attribute("heads", c10::IntType::get(), c.num_heads);
  mod.register_attribute("d", c10::IntType::get(), d);
  mod.register_attribute("scale", c10::FloatType::get(), 1.0 / std::sqrt(double(d)));
  mod.register_attribute("eps", c10::FloatType::get(), 1e-12);
  mod.define(bert_source(tail));
  mod.save(out.string());
}

const std::vector<std::string> TEXTS = {"银行卡怎么挂失", "a", "今天天气很好，适合出去玩吗？我们一起去公园散步吧",
                                        "abc def", "  空白  "};

double max_abs_diff(const Matrix& a, const Matrix& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  double worst = 0;
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t j = 0; j < a.cols; ++j) worst = std::max(worst, double(std::abs(a.row(r)[j] - b.row(r)[j])));
  return worst;
}

}  // namespace

TEST(TorchScriptEncoder, MatchesTheNativeEncoderOnTheSameWeights) {
  test::TinyCheckpoint c;
  c.normalize = true;
  const fs::path dir = test::scratch_dir("torchscript/model");
  test::write_checkpoint(dir, c);
  write_module(dir, c, "    return x", dir / "states.pt");
  write_module(dir, c, "    return (x, x[:, 0])", dir / "tuple.pt");
  // Pooled inside the module: mean over real tokens, then L2 norm (what the folder's pipeline does).
  write_module(dir, c, "    p = (x * m).sum(1) / m.sum(1)\n    return p / p.norm(2, 1, True)", dir / "pooled.pt");

  std::unique_ptr<Encoder> native = make_encoder("hf:" + dir.string());
  EncodeOptions eo;
  const Matrix want = native->encode(TEXTS, eo);
  // Another architecture's config.json next to the module is not an error: the module is what runs.
  const fs::path other = test::scratch_dir("torchscript/other");
  for (const char* f : {"vocab.txt", "modules.json", "1_Pooling/config.json"}) {
    fs::create_directories((other / f).parent_path());
    fs::copy_file(dir / f, other / f);
  }
  std::ofstream(other / "config.json") << R"({"model_type": "distilbert", "dim": 32})";
  fs::copy_file(dir / "states.pt", other / "states.pt");
  {
    std::unique_ptr<Encoder> ts = make_encoder("torchscript:" + (other / "states.pt").string());
    EXPECT_LT(max_abs_diff(ts->encode(TEXTS, eo), want), 1e-5);
  }
  for (const char* file : {"states.pt", "tuple.pt", "pooled.pt"}) {
    std::unique_ptr<Encoder> ts = make_encoder("torchscript:" + (dir / file).string() + ",batch=2");
    EXPECT_EQ(ts->dim(), c.hidden_size) << file;
    EXPECT_EQ(ts->spec(), "torchscript:" + fs::weakly_canonical(dir / file).string() + ",fp32");
    EXPECT_LT(max_abs_diff(ts->encode(TEXTS, eo), want), 1e-5) << file;
    EXPECT_NE(ts->info().fingerprint, native->info().fingerprint);
  }
}

TEST(TorchScriptEncoder, BadModulesAreOneLineErrorsNamingTheFile) {
  test::TinyCheckpoint c;
  const fs::path dir = test::scratch_dir("torchscript/bad");
  test::write_checkpoint(dir, c);
  {
    std::ofstream(dir / "text.pt") << "not a zip archive\n";
  }
  write_module(dir, c, "    return x", dir / "good.pt");
  {  // truncated: the first half of a real module
    std::ifstream in(dir / "good.pt", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir / "truncated.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  write_module(dir, c, "    return x.sum()", dir / "scalar.pt");
  write_module(dir, c, "    return x[:, :, :, None]", dir / "rank4.pt");

  const std::pair<const char*, const char*> cases[] = {
      {"text.pt", "not a loadable TorchScript module"},
      {"truncated.pt", "not a loadable TorchScript module"},
      {"scalar.pt", "expected floating-point [batch, dim] or [batch, seq, hidden]"},
      {"rank4.pt", "expected floating-point [batch, dim] or [batch, seq, hidden]"},
      {"missing.pt", "is not a file"},
  };
  for (const auto& [file, fragment] : cases) {
    const std::string e = test::error_of<UserError>([&] { make_encoder("torchscript:" + (dir / file).string()); });
    EXPECT_NE(e.find(fragment), std::string::npos) << file << ": " << e;
    EXPECT_NE(e.find(file), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

// On a GPU (the CUDA build check), the module moves there and gives the CPU's vectors.
TEST(TorchScriptEncoderCuda, MatchesCpu) {
  if (accelerator_description() == "none") GTEST_SKIP() << "no CUDA device";
  test::TinyCheckpoint c;
  const fs::path dir = test::scratch_dir("torchscript/cuda");
  test::write_checkpoint(dir, c);
  write_module(dir, c, "    return x", dir / "states.pt");
  EncodeOptions eo;
  const Matrix cpu = make_encoder("torchscript:" + (dir / "states.pt").string())->encode(TEXTS, eo);
  std::unique_ptr<Encoder> gpu = make_encoder("torchscript:" + (dir / "states.pt").string() + ",cuda");
  EXPECT_EQ(gpu->info().device, "cuda:0");
  EXPECT_LT(max_abs_diff(gpu->encode(TEXTS, eo), cpu), 1e-4);
}
