#pragma once
// A C interface to Debian's libsentencepiece, built as its own module
// (libembeval_sentencepiece.so) and opened by runners/tokenizers/sentencepiece_tokenizer.cpp
// with dlmopen(LM_ID_NEWLM), in a link-map namespace of its own. Why:
// libsentencepiece carries its own copy of protobuf-lite and exports its
// symbols; linked into a process that also loads libtorch's libprotobuf, the
// two copies bind to each other's functions and the process crashes before
// main(). (RTLD_DEEPBIND is not enough: it breaks libstdc++'s std::cerr
// once the executable holds a copy-relocated std::cout.) Across the namespace
// boundary only C types pass: no C++ object, no memory freed on the other side.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBEVAL_SPM_ABI 2

typedef struct embeval_spm embeval_spm;
typedef void (*embeval_spm_emit)(void* ctx, int id);

int embeval_spm_abi(void);
// NULL on failure, with a message in error[error_size].
embeval_spm* embeval_spm_load(const char* path, char* error, size_t error_size);
// The same from a serialized ModelProto held in memory.
embeval_spm* embeval_spm_load_proto(const char* data, size_t size, char* error, size_t error_size);
void embeval_spm_free(embeval_spm* model);
int embeval_spm_piece_size(const embeval_spm* model);
// Encodes text and emits one id per piece: with via_piece_strings, the id
// PieceToId gives for the piece's string (how transformers' slow tokenizers
// map pieces), else SentencePiece's own id. Returns 0 on failure.
int embeval_spm_encode(const embeval_spm* model, const char* text, size_t size, int via_piece_strings,
                       embeval_spm_emit emit, void* ctx, char* error, size_t error_size);
// SentencePieceTrainer::Train with command-line style arguments (tests).
int embeval_spm_train(const char* args, char* error, size_t error_size);

#ifdef __cplusplus
}
#endif
