// Tokenizer throughput on the bundled C-MTEB texts (every string of the full
// task files: STS pairs, queries, classification texts, clustering
// sentences, retrieval passages): tokens/s and texts/s for WordPiece on the
// bert-base-chinese vocabulary, as vocab.txt (BertTokenizer rules, with NFC)
// and as tokenizer.json (BertTokenizerFast rules), uncased and cased; on all
// texts, on the short ones (< 64 characters) and on the long ones (>= 512);
// and for the XLM-R SentencePiece path on a small model trained here. No
// truncation (encode_plain), so every token of every text counts.
//
// Before anything is timed the WordPiece tokenizer's ids are checked against
// Hugging Face's on tests/data/tokenizer/bert-base-chinese-uncased.jsonl; a
// mismatch exits non-zero without running the benchmarks.
//
// Run: ./build/tests/bench_kern_tokenize [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "runners/tokenizers/sentencepiece_tokenizer.h"
#include "runners/tokenizers/tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace embeval;

namespace {

const fs::path SOURCE = EMBEVAL_SOURCE_DIR;

void collect_strings(const json& v, std::vector<std::string>& out) {
  if (v.is_string()) {
    if (!v.get_ref<const std::string&>().empty()) out.push_back(v.get<std::string>());
  } else if (v.is_array() || v.is_object()) {
    for (const auto& x : v) collect_strings(x, out);
  }
}

// Every string field of the full (not mini) task files, in a fixed order.
const std::vector<std::string>& all_texts() {
  static std::vector<std::string> texts = [] {
    std::vector<fs::path> files;
    for (const auto& task : fs::directory_iterator(SOURCE / "datasets/cmteb"))
      for (const char* name : {"test.jsonl", "train.jsonl", "corpus.jsonl", "queries.jsonl"})
        if (fs::exists(task.path() / name)) files.push_back(task.path() / name);
    std::sort(files.begin(), files.end());
    std::vector<std::string> out;
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::string line;
      while (std::getline(in, line)) {
        json row = json::parse(line);
        if (row.contains("_id")) row.erase("_id");
        collect_strings(row, out);
      }
    }
    return out;
  }();
  return texts;
}

size_t chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

const std::vector<std::string>& texts_of(const std::string& which) {
  static std::map<std::string, std::vector<std::string>> cache;
  auto it = cache.find(which);
  if (it != cache.end()) return it->second;
  std::vector<std::string> out;
  for (const std::string& t : all_texts()) {
    size_t n = chars(t);
    if (which == "all" || (which == "short" && n < 64) || (which == "long" && n >= 512)) out.push_back(t);
  }
  return cache[which] = std::move(out);
}

fs::path work_dir() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("embeval_bench_tokenize_" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

void write_file(const fs::path& f, const std::string& text) { std::ofstream(f, std::ios::binary) << text; }

// bert-base-chinese as vocab.txt or tokenizer.json, cased or uncased.
fs::path bert_dir(bool lower, bool as_json) {
  fs::path dir = work_dir() / (std::string("bert-") + (lower ? "u" : "c") + (as_json ? "-json" : "-txt"));
  if (fs::exists(dir)) return dir;
  fs::create_directories(dir);
  fs::path vocab = SOURCE / "tests/data/tokenizer/bert-base-chinese-vocab.txt";
  write_file(dir / "tokenizer_config.json", json({{"do_lower_case", lower}, {"model_max_length", 512}}).dump());
  if (!as_json) {
    fs::copy_file(vocab, dir / "vocab.txt");
    return dir;
  }
  json v = json::object();
  std::ifstream in(vocab, std::ios::binary);
  std::string line;
  for (int id = 0; std::getline(in, line, '\n'); ++id) v[line] = id;
  json tj = {{"normalizer", {{"type", "BertNormalizer"}, {"clean_text", true}, {"lowercase", lower}}},
             {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
             {"post_processor", {{"type", "BertProcessing"}, {"sep", {"[SEP]", 102}}, {"cls", {"[CLS]", 101}}}},
             {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", v}}}};
  write_file(dir / "tokenizer.json", tj.dump());
  return dir;
}

fs::path xlmr_dir() {
  fs::path dir = work_dir() / "xlmr";
  if (fs::exists(dir / "sentencepiece.bpe.model")) return dir;
  fs::create_directories(dir);
  std::string corpus;
  const std::vector<std::string> texts = texts_of("all");
  for (size_t i = 0; i < texts.size(); i += 7) corpus += texts[i] + "\n";
  write_file(dir / "corpus.txt", corpus);
  SentencePieceTokenizer::train("--input=" + (dir / "corpus.txt").string() + " --model_prefix=" +
                                (dir / "spm").string() +
                                " --vocab_size=8000 --model_type=unigram --num_threads=2 --minloglevel=1"
                                " --input_sentence_size=200000 --shuffle_input_sentence=false");
  fs::rename(dir / "spm.model", dir / "sentencepiece.bpe.model");
  return dir;
}

bool verify() {
  auto tok = load_tokenizer(bert_dir(true, false));
  std::ifstream in(SOURCE / "tests/data/tokenizer/bert-base-chinese-uncased.jsonl", std::ios::binary);
  std::string line;
  size_t total = 0, same = 0;
  while (std::getline(in, line)) {
    json row = json::parse(line);
    json texts = row["text"].is_string() ? json::array({row["text"]}) : row["text"];
    json ids = row["text"].is_string() ? json::array({row["input_ids"]}) : row["input_ids"];
    for (size_t k = 0; k < texts.size(); ++k, ++total)
      same += tok->encode(texts[k].get<std::string>(), 512) == ids[k].get<std::vector<int32_t>>();
  }
  std::fprintf(stderr, "verify: %zu / %zu reference texts give Hugging Face's ids\n", same, total);
  return total > 0 && same == total;
}

void run(benchmark::State& state, const Tokenizer& tok, const std::vector<std::string>& texts) {
  const size_t chunk = 64;
  size_t next = (static_cast<size_t>(state.thread_index()) * 997) % texts.size();
  int64_t tokens = 0, n_texts = 0, bytes = 0;
  for (auto _ : state) {
    for (size_t k = 0; k < chunk; ++k) {
      const std::string& t = texts[next];
      next = next + 1 == texts.size() ? 0 : next + 1;
      std::vector<int32_t> ids = tok.encode_plain(t);
      benchmark::DoNotOptimize(ids.data());
      tokens += static_cast<int64_t>(ids.size());
      bytes += static_cast<int64_t>(t.size());
      ++n_texts;
    }
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.counters["texts/s"] = benchmark::Counter(static_cast<double>(n_texts), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(bytes);
}

// Made on first use (the SentencePiece model is trained only when one of its
// benchmarks runs); the benchmark threads share them.
const Tokenizer& tokenizer(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Tokenizer>> made;
  std::lock_guard<std::mutex> lock(mutex);
  auto& tok = made[name];
  if (!tok) {
    if (name == "sentencepiece/xlmr-fairseq")
      tok = load_tokenizer(xlmr_dir());
    else
      tok = load_tokenizer(bert_dir(name.find("/uncased") != std::string::npos,
                                    name.find("tokenizer.json") != std::string::npos));
  }
  return *tok;
}

void BM_tokenize(benchmark::State& state, std::string name, std::string which) {
  const Tokenizer& tok = tokenizer(name);
  const std::vector<std::string>& texts = texts_of(which);
  run(state, tok, texts);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (!verify()) {
    std::fprintf(stderr, "bench_kern_tokenize: the tokenizer does not reproduce Hugging Face's ids; not timing it\n");
    return 1;
  }
  std::fprintf(stderr, "texts: %zu (%zu short, %zu long)\n", texts_of("all").size(), texts_of("short").size(),
               texts_of("long").size());
  std::vector<std::string> names;
  for (const char* file : {"vocab.txt", "tokenizer.json"})
    for (const char* casing : {"uncased", "cased"}) names.push_back(std::string("wordpiece/") + file + "/" + casing);
  if (SentencePieceTokenizer::available())
    names.push_back("sentencepiece/xlmr-fairseq");
  else
    std::fprintf(stderr, "SentencePiece module not built: no sentencepiece benchmarks\n");
  for (const char* which : {"all", "short", "long"})
    for (const std::string& name : names)
      benchmark::RegisterBenchmark((name + "/" + which).c_str(), BM_tokenize, name, std::string(which))
          ->ThreadRange(1, 2)
          ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(work_dir(), ec);
  return 0;
}
