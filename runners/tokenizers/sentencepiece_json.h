#pragma once
// XLM-R's tokenizer.json (a Unigram model, as transformers'
// XLMRobertaConverter writes it from sentencepiece.bpe.model) turned back into
// the SentencePiece model it came from, so that checkpoints shipping only
// tokenizer.json run through the same SentencePiece code as those with the
// original file. The converter's layout is undone exactly:
//   tokenizer.json vocab: <s> <pad> </s> <unk> p3 p4 ... [<mask>]  (unk_id 3)
//   SentencePiece pieces: <unk> <s> </s> p3 p4 ...
// with the scores kept, the Precompiled normalizer's character map as the
// model's normalizer (its Replace(" {2,}") is SentencePiece's
// remove_extra_whitespaces) and Metaspace's prefix space as
// add_dummy_prefix. Other normalizers, pre-tokenizers or layouts are a
// UserError naming the file.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace embeval {

// The serialized sentencepiece ModelProto (protobuf wire format).
std::string sentencepiece_model_from_tokenizer_json(const nlohmann::json& tokenizer_json,
                                                    const std::filesystem::path& file);

}  // namespace embeval
