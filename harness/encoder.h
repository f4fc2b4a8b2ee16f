#pragma once
// The embedding backend interface. Contract, stated once: encode(texts) returns
// a texts.size() x dim() float32 row-major Matrix whose row i embeds texts[i];
// a text's vector does not depend on the other texts in the call. Encoders
// are created from spec strings by runners/encoder_factory.h.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "harness/matrix.h"

namespace embeval {

// The prompt type a text set is encoded with, as MTEB has it: queries and
// passages of retrieval and reranking; ROLE_NONE for the symmetric task types
// (STS, PairClassification, Classification, Clustering), which MTEB encodes
// with no prompt type, so a model's "query" / "passage" prompt does not apply.
enum Role { ROLE_QUERY, ROLE_PASSAGE, ROLE_NONE };
// "query", "passage", "text": the key a result's recorded prompts use.
const char* role_name(Role r);

// How the model compares two vectors (sentence-transformers' similarity_fn_name).
enum Similarity { SIMILARITY_COSINE, SIMILARITY_DOT, SIMILARITY_EUCLIDEAN, SIMILARITY_MANHATTAN };
const char* similarity_name(Similarity s);

struct EncodeOptions {
  Role role = ROLE_PASSAGE;
  // Task instruction for models that take one; the encoder decides how it is
  // applied (prepended, excluded from pooling, ignored by lexical baselines).
  std::string prompt;
  // The task being evaluated (task.json name and type), for models whose
  // prompts are keyed by task name or type; empty outside a task.
  std::string task_name, task_type;
  // Called by backends that encode in batches after each one: texts done of
  // the call's total (progress display); may be empty.
  std::function<void(int64_t done, int64_t total)> progress;
};

struct EncoderInfo {
  std::string spec;         // canonical spec string (factory round-trips it)
  std::string name;         // display name, e.g. "bge-small-zh-v1.5"
  std::string fingerprint;  // changes whenever the vectors could change
  int64_t dim = 0;
  Similarity similarity = SIMILARITY_COSINE;
  int64_t n_parameters = 0;  // 0 when not applicable
  int64_t max_tokens = 0;    // 0 when unlimited / not applicable
  std::string dtype = "fp32";
  std::string quantization;  // empty when not quantized
  std::string device = "cpu";
  std::string revision;      // checkpoint revision when known
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual Matrix encode(const std::vector<std::string>& texts, const EncodeOptions& options) = 0;
  virtual const EncoderInfo& info() const = 0;
  // Tokens processed by the last encode() call; -1 for backends without tokens.
  virtual int64_t last_token_count() const { return -1; }
  // The prompt encode() applies with these options (after the backend's own
  // prompts and overrides), recorded with each result; "" when none.
  virtual std::string prompt_used(const EncodeOptions& options) const { return options.prompt; }
  // Accelerator memory: the most bytes the backend's allocator had handed
  // out at once (CUDA's max_memory_allocated) since the last reset; -1 for
  // backends that run on the CPU (their peak is the process RSS).
  virtual int64_t peak_device_bytes() const { return -1; }
  virtual void reset_peak_device_bytes() {}

  int64_t dim() const { return info().dim; }
  const std::string& spec() const { return info().spec; }
};

}  // namespace embeval
