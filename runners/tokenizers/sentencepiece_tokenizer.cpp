#include "runners/tokenizers/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "harness/error.h"
#include "runners/tokenizers/spm_shim.h"

namespace embeval {
namespace {

constexpr const char* MODULE_NAME = "libembeval_sentencepiece.so";

struct SpmModule {
  decltype(&embeval_spm_load) load = nullptr;
  decltype(&embeval_spm_load_proto) load_proto = nullptr;
  decltype(&embeval_spm_free) free = nullptr;
  decltype(&embeval_spm_piece_size) piece_size = nullptr;
  decltype(&embeval_spm_encode) encode = nullptr;
  decltype(&embeval_spm_train) train = nullptr;
};

std::string executable_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::filesystem::path(std::string(buf, static_cast<size_t>(n))).parent_path().string();
}

// The module is looked for in $EMBEVAL_SENTENCEPIECE_MODULE, next to the
// running executable (and one folder up, for tests/ and bench executables),
// then where the build put it.
SpmModule open_module() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("EMBEVAL_SENTENCEPIECE_MODULE")) candidates.push_back(env);
  std::string exe = executable_dir();
  if (!exe.empty()) {
    candidates.push_back(exe + "/" + MODULE_NAME);
    candidates.push_back(exe + "/../" + MODULE_NAME);
  }
#ifdef EMBEVAL_SENTENCEPIECE_MODULE
  candidates.push_back(EMBEVAL_SENTENCEPIECE_MODULE);
#endif
  std::string errors;
  for (const std::string& path : candidates) {
    if (!std::filesystem::exists(path)) continue;
    // A namespace of its own: libsentencepiece binds to its own protobuf
    // copy, not to the libprotobuf libtorch loaded (see spm_shim.h).
    void* handle = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* e = dlerror();
      errors += fmt::format("; {}: {}", path, e ? e : "dlopen failed");
      continue;
    }
    auto abi = reinterpret_cast<decltype(&embeval_spm_abi)>(dlsym(handle, "embeval_spm_abi"));
    SpmModule m;
    m.load = reinterpret_cast<decltype(m.load)>(dlsym(handle, "embeval_spm_load"));
    m.load_proto = reinterpret_cast<decltype(m.load_proto)>(dlsym(handle, "embeval_spm_load_proto"));
    m.free = reinterpret_cast<decltype(m.free)>(dlsym(handle, "embeval_spm_free"));
    m.piece_size = reinterpret_cast<decltype(m.piece_size)>(dlsym(handle, "embeval_spm_piece_size"));
    m.encode = reinterpret_cast<decltype(m.encode)>(dlsym(handle, "embeval_spm_encode"));
    m.train = reinterpret_cast<decltype(m.train)>(dlsym(handle, "embeval_spm_train"));
    if (abi && abi() == EMBEVAL_SPM_ABI && m.load && m.load_proto && m.free && m.piece_size && m.encode && m.train)
      return m;
    errors += fmt::format("; {}: not the expected module (ABI {})", path, EMBEVAL_SPM_ABI);
  }
  fail("SentencePiece support unavailable: {} not found or not loadable{}; expected it next to the embeval "
       "binary or in $EMBEVAL_SENTENCEPIECE_MODULE",
       MODULE_NAME, errors);
}

const SpmModule& spm_module() {
  static const SpmModule module = open_module();
  return module;
}

}  // namespace

bool SentencePieceTokenizer::available() {
  try {
    spm_module();
    return true;
  } catch (const UserError&) {
    return false;
  }
}

namespace {

void push_id(void* ctx, int id) { static_cast<std::vector<int32_t>*>(ctx)->push_back(id); }

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& model_file, SentencePieceOptions options)
    : file_(model_file), options_(std::move(options)) {
  char error[512] = "";
  model_ = spm_module().load(model_file.string().c_str(), error, sizeof(error));
  if (!model_) fail("{}: not a SentencePiece model ({})", model_file.string(), error);
  init();
}

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& source, const std::string& serialized_model,
                                               SentencePieceOptions options)
    : file_(source), options_(std::move(options)) {
  char error[512] = "";
  model_ = spm_module().load_proto(serialized_model.data(), serialized_model.size(), error, sizeof(error));
  if (!model_) fail("{}: SentencePiece does not accept the model it holds ({})", source.string(), error);
  init();
}

void SentencePieceTokenizer::init() {
  pieces_ = spm_module().piece_size(model_);
  mask_id_ = pieces_ + FAIRSEQ_OFFSET;
  vocab_size_ = int64_t{pieces_} + FAIRSEQ_OFFSET + 1;
  // The fairseq specials the configuration does not list (XLMRobertaTokenizer
  // declares <mask> with lstrip=True).
  const AddedToken fairseq[] = {{"<s>", BOS_ID, false, false, true},
                                {"<pad>", PAD_ID, false, false, true},
                                {"</s>", EOS_ID, false, false, true},
                                {"<unk>", UNK_ID, false, false, true},
                                {"<mask>", mask_id_, true, false, true}};
  for (const AddedToken& t : fairseq) {
    bool listed = std::any_of(options_.added_tokens.begin(), options_.added_tokens.end(),
                              [&](const AddedToken& a) { return a.content == t.content; });
    if (!listed) options_.added_tokens.push_back(t);
  }
  for (const AddedToken& t : options_.added_tokens) vocab_size_ = std::max<int64_t>(vocab_size_, int64_t{t.id} + 1);
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (model_) spm_module().free(model_);
}

void SentencePieceTokenizer::train(const std::string& args) {
  char error[1024] = "";
  if (!spm_module().train(args.c_str(), error, sizeof(error))) fail("SentencePiece training failed: {}", error);
}

void SentencePieceTokenizer::encode_into(std::string_view text, bool via_piece_strings,
                                         std::vector<int32_t>& ids) const {
  char error[512] = "";
  if (!spm_module().encode(model_, text.data(), text.size(), via_piece_strings ? 1 : 0, push_id, &ids, error,
                           sizeof(error)))
    fail("{}: SentencePiece failed: {}", file_.string(), error);
}

std::vector<int32_t> SentencePieceTokenizer::sentencepiece_ids(const std::string& text) const {
  std::vector<int32_t> ids;
  encode_into(text, false, ids);
  return ids;
}

std::vector<int32_t> SentencePieceTokenizer::encode_plain(const std::string& text) const {
  std::string prepared = options_.preprocess.apply(text);
  std::vector<int32_t> ids, spm;
  for (const TextPiece& p : split_added_tokens(prepared, options_.added_tokens)) {
    if (p.id >= 0) {
      ids.push_back(p.id);
      continue;
    }
    // transformers maps the piece strings back (XLMRobertaTokenizer.
    // _convert_token_to_id): SentencePiece id 0 is <unk>, others shift by one.
    spm.clear();
    encode_into(p.text, true, spm);
    for (int32_t id : spm) ids.push_back(id == 0 ? UNK_ID : id + FAIRSEQ_OFFSET);
  }
  return ids;
}

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string& text, int64_t max_length) const {
  if (max_length < 2) fail("max length {} is too small: the special tokens alone take 2", max_length);
  std::vector<int32_t> body = encode_plain(text);
  if (static_cast<int64_t>(body.size()) > max_length - 2) body.resize(static_cast<size_t>(max_length - 2));
  std::vector<int32_t> ids;
  ids.reserve(body.size() + 2);
  ids.push_back(BOS_ID);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(EOS_ID);
  return ids;
}

std::string SentencePieceTokenizer::describe() const {
  return fmt::format("sentencepiece ({}, {} tokens, fairseq ids{})", file_.filename().string(), vocab_size_,
                     options_.preprocess.lower ? ", st_lower_case" : "");
}

}  // namespace embeval
