// Content digests kept with idempotency records (a report's or a draft's
// request id): FNV-1a over length-prefixed fields, so distinct contents have
// distinct encodings (their 64-bit digests may still collide). Stored in
// RocksDB: the encoding and the "v1:" digest must never change.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace whistle::core {

class Fingerprint {
 public:
  void Bytes(std::string_view b) {
    for (unsigned char ch : b) {
      h_ ^= ch;
      h_ *= 1099511628211ull;
    }
  }
  // Little-endian, 8 bytes.
  void Number(uint64_t v) {
    char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<char>(v >> (8 * i));
    Bytes(std::string_view(le, 8));
  }
  void Text(std::string_view t) {
    Number(t.size());
    Bytes(t);
  }
  void Real(double d) {
    uint64_t bits = 0;
    static_assert(sizeof bits == sizeof d);
    std::memcpy(&bits, &d, sizeof bits);
    Number(bits);
  }
  // "v1:" and 16 hex digits.
  std::string Digest() const {
    char hex[20];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h_));
    return std::string("v1:") + hex;
  }

 private:
  uint64_t h_ = 14695981039346656037ull;
};

}  // namespace whistle::core
