#include "runners/tokenizers/spm_shim.h"

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

struct embeval_spm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

void set_error(char* error, size_t size, const std::string& message) {
  if (error && size > 0) std::snprintf(error, size, "%s", message.c_str());
}

}  // namespace

extern "C" {

int embeval_spm_abi(void) { return EMBEVAL_SPM_ABI; }

embeval_spm* embeval_spm_load(const char* path, char* error, size_t error_size) {
  auto* model = new embeval_spm;
  auto status = model->processor.Load(path);
  if (!status.ok()) {
    set_error(error, error_size, status.ToString());
    delete model;
    return nullptr;
  }
  return model;
}

embeval_spm* embeval_spm_load_proto(const char* data, size_t size, char* error, size_t error_size) {
  auto* model = new embeval_spm;
  auto status = model->processor.LoadFromSerializedProto(std::string_view(data, size));
  if (!status.ok()) {
    set_error(error, error_size, status.ToString());
    delete model;
    return nullptr;
  }
  return model;
}

void embeval_spm_free(embeval_spm* model) { delete model; }

int embeval_spm_piece_size(const embeval_spm* model) { return model->processor.GetPieceSize(); }

int embeval_spm_encode(const embeval_spm* model, const char* text, size_t size, int via_piece_strings,
                       embeval_spm_emit emit, void* ctx, char* error, size_t error_size) {
  std::string_view input(text, size);
  if (via_piece_strings) {
    std::vector<std::string> pieces;
    auto status = model->processor.Encode(input, &pieces);
    if (!status.ok()) {
      set_error(error, error_size, status.ToString());
      return 0;
    }
    for (const std::string& piece : pieces) emit(ctx, model->processor.PieceToId(piece));
    return 1;
  }
  std::vector<int> ids;
  auto status = model->processor.Encode(input, &ids);
  if (!status.ok()) {
    set_error(error, error_size, status.ToString());
    return 0;
  }
  for (int id : ids) emit(ctx, id);
  return 1;
}

int embeval_spm_train(const char* args, char* error, size_t error_size) {
  auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) {
    set_error(error, error_size, status.ToString());
    return 0;
  }
  return 1;
}

}  // extern "C"
