#include "runners/tokenizers/added_tokens.h"

#include <utf8proc.h>

#include "datasets/text_util.h"
#include "runners/tokenizers/unicode_text.h"

namespace embeval {
namespace {

// The code point that ends at s[end) (s valid or not); its start goes to *start.
char32_t last_code_point(std::string_view s, size_t end, size_t* start) {
  size_t b = end - 1;
  while (b > 0 && end - b < 4 && (static_cast<unsigned char>(s[b]) & 0xc0) == 0x80) --b;
  utf8proc_int32_t c;
  utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + b),
                                        static_cast<utf8proc_ssize_t>(end - b), &c);
  if (n != static_cast<utf8proc_ssize_t>(end - b)) {
    *start = end - 1;
    return 0xfffd;
  }
  *start = b;
  return static_cast<char32_t>(c);
}

}  // namespace

std::string_view python_lstrip(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                          static_cast<utf8proc_ssize_t>(s.size() - i), &c);
    if (n <= 0 || !unicode::python_isspace(static_cast<char32_t>(c))) break;
    i += static_cast<size_t>(n);
  }
  return s.substr(i);
}

std::string_view python_rstrip(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start;
    char32_t c = last_code_point(s, end, &start);
    if (!unicode::python_isspace(c)) break;
    end = start;
  }
  return s.substr(0, end);
}

std::vector<TextPiece> split_added_tokens(std::string_view text, const std::vector<AddedToken>& tokens) {
  std::vector<TextPiece> pieces;
  bool first_byte[256] = {};
  for (const AddedToken& t : tokens)
    if (!t.content.empty()) first_byte[static_cast<unsigned char>(t.content[0])] = true;
  size_t piece_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!first_byte[static_cast<unsigned char>(text[i])]) continue;
    const AddedToken* best = nullptr;
    for (const AddedToken& t : tokens) {
      if (t.content.empty() || text.compare(i, t.content.size(), t.content) != 0) continue;
      if (!best || t.content.size() > best->content.size()) best = &t;
    }
    if (!best) continue;
    pieces.push_back({text.substr(piece_start, i - piece_start), -1});
    pieces.push_back({text.substr(i, best->content.size()), best->id});
    i += best->content.size();
    piece_start = i;
    --i;
  }
  pieces.push_back({text.substr(piece_start), -1});
  // lstrip / rstrip: a token eats the whitespace next to it.
  for (size_t k = 0; k < pieces.size(); ++k) {
    if (pieces[k].id < 0) continue;
    const AddedToken* t = nullptr;
    for (const AddedToken& a : tokens)
      if (a.id == pieces[k].id && a.content == pieces[k].text) t = &a;
    if (!t) continue;
    if (t->lstrip && k > 0 && pieces[k - 1].id < 0) pieces[k - 1].text = python_rstrip(pieces[k - 1].text);
    if (t->rstrip && k + 1 < pieces.size() && pieces[k + 1].id < 0)
      pieces[k + 1].text = python_lstrip(pieces[k + 1].text);
  }
  std::vector<TextPiece> out;
  out.reserve(pieces.size());
  for (const TextPiece& p : pieces)
    if (p.id >= 0 || !p.text.empty()) out.push_back(p);
  return out;
}

std::string SentencePreprocess::apply(std::string_view text) const {
  std::string s = strip ? data::python_strip(text) : std::string(text);
  if (lower) s = unicode::encode_utf8(unicode::python_lower(unicode::decode_utf8(s)));
  return s;
}

}  // namespace embeval
