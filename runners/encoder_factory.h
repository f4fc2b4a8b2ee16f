#pragma once
// Model specs are strings, parsed in one place (like faiss's index_factory):
//
//   precomputed:FILE        vectors from a JSONL file {"text", "embedding"}
//   baseline:char-ngram     hashed character 1-3-gram TF-IDF, no weights
//   hf:DIR[,TOKEN...]       a Hugging Face / sentence-transformers checkpoint
//   DIR[,TOKEN...]          the same, for an existing folder (bert:DIR is an alias)
//   torchscript:FILE[,TOKEN...]  a traced module (input_ids, attention_mask) -> vectors,
//                           tokenizer and sentence-transformers files from FILE's folder
//
// hf tokens: fp32 | fp16 | bf16, cpu | cuda | cuda:N, maxlen=N, batch=N,
// tokens=N (padded tokens per batch), a quantization method (wo-int8,
// wo-int4-g128, w8a8, ...: runners/quant/quant_spec.h) and fakequant (its
// integers through the fp32 kernels). RunnerOptions (CLI flags) fill in the
// same settings; a flag that contradicts a spec token is an error. The
// encoder's info().spec is the canonical form "hf:/abs/dir,fp32[,maxlen=N][,METHOD[,fakequant]]",
// which parses back to the same model; device and batching are not part of
// it (they do not change the vectors; the device is recorded on its own).
//
// A bad spec throws UserError: "could not parse model spec ...; known: ...".
#include <memory>
#include <string>
#include <vector>

#include "harness/encoder.h"
#include "runners/bert/runner_options.h"

namespace embeval {

std::unique_ptr<Encoder> make_encoder(const std::string& spec, const RunnerOptions& options = {});
// The RunnerOptions an hf spec's tokens give merged with `flags`; UserError
// on an unknown token or a contradiction. Exposed for tests.
RunnerOptions parse_runner_tokens(const std::string& spec, const std::vector<std::string>& tokens,
                                  const RunnerOptions& flags);
// What make_encoder(spec, flags) will run, read from the spec without
// loading weights: the hf / folder / torchscript tokens merged with `flags`
// (the flags alone for the other backends). The CLI asks it whether a spec
// names a method that needs calibration texts. UserError as make_encoder's
// on a bad token, a contradiction, or a method for a folder that is
// quantized already (its JSON files are read for that).
RunnerOptions spec_options(const std::string& spec, const RunnerOptions& flags);
// One line per backend form, for --help and error messages.
std::vector<std::string> encoder_spec_forms();

}  // namespace embeval
