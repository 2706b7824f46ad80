#include "core/text.h"

#include <cstdint>
#include <cstdio>

namespace whistle::core {

namespace {

constexpr size_t kQuoteMax = 32;

// Length of the valid UTF-8 sequence starting at `i`, or 0 when it is not one.
size_t SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  auto cont = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  uint8_t b = byte(i);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    uint8_t b1 = byte(i + 1);
    if (b == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b == 0xED && b1 >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    uint8_t b1 = byte(i + 1);
    if (b == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b == 0xF4 && b1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '@' || c == '-';
}

Status TooLong(std::string_view field, size_t max, size_t got) {
  return Status::InvalidArgument(std::string(field) + ": must be at most " + std::to_string(max) +
                                 " bytes, got " + std::to_string(got));
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t n = SequenceLength(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

Status CheckText(std::string_view field, std::string_view value, size_t max) {
  if (value.size() > max) return TooLong(field, max, value.size());
  if (!IsValidUtf8(value)) return Status::InvalidArgument(std::string(field) + ": not valid UTF-8");
  for (size_t i = 0; i < value.size(); ++i) {
    auto b = static_cast<uint8_t>(value[i]);
    auto next = [&](size_t k) {
      return i + k < value.size() ? static_cast<uint8_t>(value[i + k]) : 0;
    };
    // C1 controls (U+0080..U+009F) are control characters too.
    if ((b < 0x20 && b != '\t' && b != '\n') || b == 0x7F || (b == 0xC2 && next(1) <= 0x9F)) {
      return Status::InvalidArgument(std::string(field) + ": control character not allowed");
    }
    // Bidirectional embeddings, overrides and isolates (U+202A..U+202E,
    // U+2066..U+2069) reorder the text shown around them on every screen.
    if (b == 0xE2 && ((next(1) == 0x80 && next(2) >= 0xAA && next(2) <= 0xAE) ||
                      (next(1) == 0x81 && next(2) >= 0xA6 && next(2) <= 0xA9))) {
      return Status::InvalidArgument(std::string(field) +
                                     ": bidirectional control character (U+202A..U+202E, "
                                     "U+2066..U+2069) not allowed");
    }
  }
  return Status::Ok();
}

Status CheckId(std::string_view field, std::string_view value, size_t max) {
  if (value.empty()) return Status::InvalidArgument(std::string(field) + ": required");
  if (value.size() > max) return TooLong(field, max, value.size());
  for (char c : value) {
    if (!IsIdChar(c)) {
      return Status::InvalidArgument(std::string(field) + ": " + Quote(value) +
                                     " has a character outside [A-Za-z0-9._:@-]");
    }
  }
  return Status::Ok();
}

std::string Quote(std::string_view value) {
  std::string out = "\"";
  size_t i = 0;
  while (i < value.size() && i < kQuoteMax) {
    size_t n = SequenceLength(value, i);
    auto b = static_cast<uint8_t>(value[i]);
    if (n == 0 || b < 0x20 || b == 0x7F || b == '"' || b == '\\') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", b);
      out += hex;
      i += 1;
      continue;
    }
    if (i + n > kQuoteMax) break;
    out.append(value.substr(i, n));
    i += n;
  }
  out += '"';
  if (i < value.size()) out += "…";
  return out;
}

}  // namespace whistle::core
