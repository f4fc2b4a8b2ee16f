#pragma once
// Model specs are strings, parsed in one place (like faiss's index_factory):
//
//   precomputed:FILE        vectors from a JSONL file {"text", "embedding"}
//   baseline:char-ngram     hashed character 1-3-gram TF-IDF, no weights
//
// A bad spec throws UserError: "could not parse model spec ...; known: ...".
#include <memory>
#include <string>
#include <vector>

#include "harness/encoder.h"

namespace embeval {

std::unique_ptr<Encoder> make_encoder(const std::string& spec);
// One line per backend form, for --help and error messages.
std::vector<std::string> encoder_spec_forms();

}  // namespace embeval
