#include "tests/test_util.h"

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace embeval::test {
namespace fs = std::filesystem;

fs::path source_dir() { return fs::path(EMBEVAL_SOURCE_DIR); }
fs::path task_dir(const std::string& relative) { return source_dir() / "datasets" / "cmteb" / relative; }
fs::path data_path(const std::string& relative) { return source_dir() / "tests" / "data" / relative; }

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  return nlohmann::json::parse(in);
}

// std::filesystem::remove_all is not called: pip's CUDA libtorch exports its
// own copy of that symbol, which wins symbol lookup and crashes (seen with
// torch 2.11 on the GPU machine). nftw walks the tree depth-first instead.
void remove_tree(const fs::path& p) {
  nftw(p.c_str(), [](const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }, 16,
       FTW_DEPTH | FTW_PHYS);
}

// ctest runs every test in its own process, in parallel: each process gets
// its own scratch root, removed when it exits (EMBEVAL_KEEP_SCRATCH=1 keeps it).
const fs::path& scratch_root() {
  static struct Root {
    fs::path path = fs::path(EMBEVAL_BINARY_DIR) / "test_scratch" / std::to_string(getpid());
    ~Root() {
      const char* keep = std::getenv("EMBEVAL_KEEP_SCRATCH");
      if (!keep || std::string(keep) != "1") remove_tree(path);
    }
  } root;
  return root.path;
}

fs::path scratch_dir(const std::string& name) {
  fs::path p = scratch_root() / name;
  remove_tree(p);
  fs::create_directories(p);
  return p;
}

void write_file(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out << text;
}

}  // namespace embeval::test

#include "datasets/task_spec.h"
#include "harness/task_type.h"
#include "runners/precomputed_encoder.h"

namespace embeval::test {

nlohmann::ordered_json evaluate_with_vectors(const fs::path& task_dir, const fs::path& vectors_jsonl,
                                             std::optional<data::ScoringProtocol> protocol) {
  data::TaskSpec spec = data::read_task_spec(task_dir);
  if (protocol) spec.protocol = *protocol;
  PrecomputedEncoder encoder(vectors_jsonl);
  EvalContext ctx(encoder, spec);
  return find_task_type(spec.type).evaluate(spec, ctx);
}

MtebReference mteb_reference(const std::string& name) {
  MtebReference ref;
  fs::path dir = data_path("mteb_reference/" + name);
  ref.file = read_json(dir / "mteb_scores.json");
  ref.scores = ref.file["scores"];
  ref.vectors = dir / "vectors.jsonl";
  std::string td = ref.file["task_dir"].get<std::string>();
  const std::string prefix = "../shared/datasets/";
  if (td.rfind(prefix, 0) != 0) throw std::runtime_error("unexpected task_dir " + td);
  ref.task_dir = task_dir(td.substr(prefix.size()));
  return ref;
}

}  // namespace embeval::test
