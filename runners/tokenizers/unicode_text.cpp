#include "runners/tokenizers/unicode_text.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <utf8proc.h>

#include "harness/error.h"

namespace embeval::unicode {
namespace {

struct CodePointRange {
  char32_t first, last;
};
const CodePointRange NEWER_THAN_PYTHON[] = {
#include "runners/tokenizers/unicode_additions.inc"
};

// Canonical normalisation through utf8proc_map (UTF-8 in and out).
std::u32string map(std::u32string_view s, int options) {
  std::string utf8 = encode_utf8(s);
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                                    static_cast<utf8proc_ssize_t>(utf8.size()), &out,
                                    static_cast<utf8proc_option_t>(options));
  // The input is valid UTF-8 by construction (decode_utf8 never yields
  // surrogates), so utf8proc can only fail on memory.
  EMBEVAL_ASSERT(n >= 0);
  std::u32string result = decode_utf8(std::string_view(reinterpret_cast<const char*>(out), static_cast<size_t>(n)));
  std::free(out);
  return result;
}

}  // namespace

// Stretches of code points that canonical normalisation leaves alone in any
// context: combining class 0, no canonical decomposition, never the second
// half of a canonical composition (tests/test_tokenizer.cpp checks each
// against utf8proc). Text made only of these skips utf8proc: ASCII, Latin-1
// symbols, general and CJK punctuation, CJK ideographs, full-width forms.
bool nfc_inert(char32_t c) {
  return c < 0x300 || (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x2002 && c <= 0x206f) ||
         (c >= 0x3000 && c <= 0x3029) || (c >= 0x3030 && c <= 0x303f) || (c >= 0xff01 && c <= 0xffef) ||
         (c >= 0xac00 && c <= 0xd7a3);  // Hangul syllables compose only with a following jamo
}

bool nfd_inert(char32_t c) {
  return c < 0xc0 || (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x2002 && c <= 0x206f) ||
         (c >= 0x3000 && c <= 0x3029) || (c >= 0x3030 && c <= 0x303f) || (c >= 0xff01 && c <= 0xffef);
}

namespace {

bool is_cased(char32_t c) {
  utf8proc_category_t cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT) return true;
  // Other_Lowercase / Other_Uppercase characters with a case mapping
  // (circled letters, Roman numerals).
  auto i = static_cast<utf8proc_int32_t>(c);
  return utf8proc_tolower(i) != i || utf8proc_toupper(i) != i;
}

bool is_case_ignorable(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      break;
  }
  // Word_Break MidLetter, MidNumLet and Single_Quote: utf8proc does not
  // expose the Word_Break property, and these 17 code points are all of it.
  switch (c) {
    case 0x27: case 0x2e: case 0x3a: case 0xb7: case 0x387: case 0x55f: case 0x5f4: case 0x2018: case 0x2019:
    case 0x2024: case 0x2027: case 0xfe13: case 0xfe52: case 0xfe55: case 0xff07: case 0xff0e: case 0xff1a:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
  while (left > 0) {
    if (*p < 0x80) {
      out.push_back(*p++);
      --left;
      continue;
    }
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
    if (n <= 0) {
      out.push_back(0xfffd);
      n = 1;
    } else {
      out.push_back(static_cast<char32_t>(c));
    }
    p += n;
    left -= n;
  }
  return out;
}

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
    return;
  }
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(c, out);
  return out;
}

std::u32string nfc(std::u32string_view s) {
  for (char32_t c : s)
    if (!nfc_inert(c)) return map(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  return std::u32string(s);
}

std::u32string nfd(std::u32string_view s) {
  for (char32_t c : s)
    if (!nfd_inert(c)) return map(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  return std::u32string(s);
}

void append_lower(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
  } else if (c == 0x130) {
    // The one unconditional multi-character lower-case mapping
    // (SpecialCasing.txt); utf8proc gives only the simple mapping.
    out.push_back('i');
    out.push_back(0x307);
  } else {
    out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
  }
}

std::u32string python_lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != 0x3a3) {
      append_lower(s[i], out);
      continue;
    }
    // Final_Sigma: preceded by a cased letter and not followed by one
    // (case-ignorable characters skipped on both sides), as CPython's
    // handle_capital_sigma does.
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) --j;
    bool final_sigma = j > 0 && is_cased(s[j - 1]);
    if (final_sigma) {
      size_t k = i + 1;
      while (k < s.size() && is_case_ignorable(s[k])) ++k;
      final_sigma = k == s.size() || !is_cased(s[k]);
    }
    out.push_back(final_sigma ? 0x3c2 : 0x3c3);
  }
  return out;
}

bool unassigned_in_python(char32_t c) {
  if (c < NEWER_THAN_PYTHON[0].first) return false;
  auto it = std::upper_bound(std::begin(NEWER_THAN_PYTHON), std::end(NEWER_THAN_PYTHON), c,
                             [](char32_t v, const CodePointRange& r) { return v < r.first; });
  return it != std::begin(NEWER_THAN_PYTHON) && c <= (it - 1)->last;
}

const char* python_unicode_version() { return EMBEVAL_PYTHON_UNICODE; }

namespace {
// "15.1.0" -> 15001000, so versions compare as numbers.
long version_number(const char* v) {
  long parts[3] = {0, 0, 0};
  for (int i = 0; i < 3 && *v; ++i) {
    char* end = nullptr;
    parts[i] = std::strtol(v, &end, 10);
    v = *end == '.' ? end + 1 : end;
  }
  return parts[0] * 1000000 + parts[1] * 1000 + parts[2];
}
}  // namespace

// Unicode only adds assignments, so the table (made against the newest
// utf8proc) serves every utf8proc from Python's version up to the table's.
bool unicode_tables_match() {
  const long linked = version_number(utf8proc_unicode_version());
  return version_number(EMBEVAL_PYTHON_UNICODE) <= linked && linked <= version_number(EMBEVAL_UTF8PROC_UNICODE);
}

bool python_isspace(char32_t c) {
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return true;
  if (c < 0x80) return false;
  return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
         c == 0x202f || c == 0x205f || c == 0x3000;
}

}  // namespace embeval::unicode
