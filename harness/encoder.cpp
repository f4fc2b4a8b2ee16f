#include "harness/encoder.h"

namespace embeval {

const char* similarity_name(Similarity s) {
  switch (s) {
    case SIMILARITY_COSINE: return "cosine";
    case SIMILARITY_DOT: return "dot";
    case SIMILARITY_EUCLIDEAN: return "euclidean";
    case SIMILARITY_MANHATTAN: return "manhattan";
  }
  return "unknown";
}

const char* role_name(Role r) {
  switch (r) {
    case ROLE_QUERY: return "query";
    case ROLE_PASSAGE: return "passage";
    case ROLE_NONE: return "text";
  }
  return "unknown";
}

}  // namespace embeval
