// Fuzz target for signed identities (services/token): the authorization header,
// token parts, JWKS documents and development identity header values. The
// first byte picks the mode (see README.md); the checks trap on violation:
//   - VerifyToken accepts only tokens signed by the embedded test key, and
//     whatever it accepts has claims that pass the door checks;
//   - a denial's message never contains the token (beyond a 32-byte quote);
//   - base64url round-trips; a parsed KeySet is never empty.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/text.h"
#include "services/token.h"

namespace {

using whistle::services::Base64UrlDecode;
using whistle::services::Base64UrlEncode;
using whistle::services::KeySet;
using whistle::services::Verified;

// The public half of tests/e2e/testdata (kid whistle-test): the seed corpus
// holds tokens it signed for kNow, so the accepting paths are reached too.
constexpr char kJwks[] = R"({"keys": [{"kty": "EC", "kid": "whistle-test", "alg": "ES256",
  "use": "sig", "crv": "P-256", "x": "j-8giaMGtgR3JD5brfr6gibKqtb7RQY9kQlAPWzKNCo",
  "y": "VNy5gLrhNFuErCO-irmVmDlVfSuqVRjWNSPUmhSqB9s"}]})";
constexpr int64_t kNow = 1800000000;
// A token of that key, valid at kNow (token_corpus/valid-staff without its header).
constexpr char kValidToken[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IndoaXN0bGUtdGVzdCIsInR5cCI6IkpXVCJ9."
    "eyJleHAiOjE4MDAwMDM1MDAsImlhdCI6MTc5OTk5OTkwMCwianVyaXNkaWN0aW9uIjoiZHdr"
    "Iiwicm9sZSI6InN0YWZmIiwic3ViIjoibGkuY29tbXVuaXR5In0."
    "tMsL2QANm215U6Fw6MOSmHQVgcLBsfJWUkxZn5vz09Go2C5Xgch7tYQBnvu-6qevgKLqxuX5WDydp_kcVv62Qw";

const KeySet& Keys() {
  static const std::shared_ptr<const KeySet> keys = [] {
    auto parsed = KeySet::Parse(kJwks, "fuzz");
    if (!parsed.ok()) __builtin_trap();
    return *parsed;
  }();
  return *keys;
}

std::vector<std::string> Split(std::string_view data, char sep, size_t parts) {
  std::vector<std::string> out;
  while (out.size() + 1 < parts) {
    size_t at = data.find(sep);
    if (at == std::string_view::npos) break;
    out.emplace_back(data.substr(0, at));
    data.remove_prefix(at + 1);
  }
  out.emplace_back(data);
  while (out.size() < parts) out.emplace_back();
  return out;
}

void Check(const Verified& v, std::string_view token) {
  if (v.ok()) {
    const auto& c = v.claims();
    if (!whistle::core::CheckId("sub", c.user, 128).ok()) __builtin_trap();
    if (c.role < whistle::v1::ROLE_GRID_WORKER || c.role > whistle::v1::ROLE_ADMIN) {
      __builtin_trap();
    }
    if (!c.jurisdiction.empty() && !whistle::core::CheckId("j", c.jurisdiction, 128).ok()) {
      __builtin_trap();
    }
    if (!c.department.empty() && !whistle::core::CheckId("d", c.department, 128).ok()) {
      __builtin_trap();
    }
    if (c.expires_at + whistle::services::kTokenLeewaySeconds <= kNow) __builtin_trap();
    return;
  }
  const std::string& message = v.denial().message;
  if (message.empty() || message.size() > 200) __builtin_trap();
  if (token.size() > 48 && message.find(token.substr(0, 48)) != std::string::npos) {
    __builtin_trap();
  }
  if (!whistle::core::IsValidUtf8(message)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 6;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (mode) {
    case 0: {  // an authorization header value
      std::string token;
      Verified bearer = whistle::services::ParseBearer(rest, &token);
      if (!bearer.ok()) {
        Check(bearer, rest);
        break;
      }
      Check(whistle::services::VerifyToken(Keys(), token, kNow), token);
      break;
    }
    case 1: {  // header JSON 0xFF payload JSON 0xFF signature bytes, encoded here
      auto parts = Split(rest, '\xff', 3);
      std::string token = Base64UrlEncode(parts[0]) + "." + Base64UrlEncode(parts[1]) + "." +
                          Base64UrlEncode(parts[2]);
      Verified v = whistle::services::VerifyToken(Keys(), token, kNow);
      if (v.ok()) __builtin_trap();  // no random signature verifies
      Check(v, token);
      break;
    }
    case 2: {  // a JWKS document
      auto keys = KeySet::Parse(rest, "fuzz");
      if (keys.ok() && (*keys)->size() == 0) __builtin_trap();
      if (!keys.ok() && !whistle::core::IsValidUtf8(keys.status().message())) __builtin_trap();
      break;
    }
    case 3: {  // development identity headers: user 0xFF role 0xFF jurisdiction 0xFF department
      auto parts = Split(rest, '\xff', 4);
      auto user = whistle::core::CheckId("x-whistle-user", parts[0], 128);
      if (user.ok() && !whistle::core::IsValidUtf8(parts[0])) __builtin_trap();
      auto role = whistle::services::ParseRoleName("x-whistle-role", parts[1]);
      if (role.ok() && whistle::services::RoleName(*role) != parts[1]) __builtin_trap();
      for (const auto& id : {parts[2], parts[3]}) {
        auto s = whistle::core::CheckId("x-whistle-jurisdiction", id, 128);
        if (!s.ok() && !whistle::core::IsValidUtf8(s.message())) __builtin_trap();
      }
      break;
    }
    case 5: {  // the valid token with bytes changed: (position u16le, xor u8) records
      std::string token = kValidToken;
      bool changed = false;
      for (size_t i = 0; i + 3 <= rest.size(); i += 3) {
        size_t at =
            (static_cast<uint8_t>(rest[i]) | static_cast<uint8_t>(rest[i + 1]) << 8) % token.size();
        const char x = rest[i + 2];
        changed |= x != 0;
        token[at] = static_cast<char>(token[at] ^ x);
      }
      Verified v = whistle::services::VerifyToken(Keys(), token, kNow);
      if (!changed && !v.ok()) __builtin_trap();  // the seed itself verifies
      // Any change to the signed part or the signature fails, bar base64url
      // variants of the same bytes (the last character's unused bits are refused).
      if (changed && v.ok() && token != kValidToken) __builtin_trap();
      Check(v, token);
      break;
    }
    case 4: {  // base64url both ways
      std::string decoded;
      if (Base64UrlDecode(rest, &decoded) && Base64UrlEncode(decoded) != rest) __builtin_trap();
      std::string again;
      if (!Base64UrlDecode(Base64UrlEncode(rest), &again) || again != rest) __builtin_trap();
      break;
    }
  }
  return 0;
}
