// Signed identities: JWTs (ES256 or RS256) verified against a JWKS, and the
// tools to make them (key generation and minting, for whistlectl and tests).
//
// Signatures are verified with OpenSSL 3 directly, against keys parsed once when
// the JWKS is loaded (libjwt 1.10 only takes a PEM, which it parsed again on
// every verification: ~0.5 ms of CPU each). The scheme is fixed by the key the
// kid names (ES256 for an EC key, RS256 for RSA); the header's alg must name that
// same scheme, so "none", HS256 keyed with our public key and an alg of the other
// key type are refused before any signature is looked at. libjwt mints tokens
// and, once the signature has been checked here, reads the claims.
//
// Plain functions and an immutable KeySet: no gRPC, no metrics, no globals, so
// it is unit-testable and whistlectl links it too. Thread-safe (KeySet is
// read-only once built).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "whistle/v1/common.pb.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace whistle::services {

// Clock skew allowed on exp, nbf and iat, in seconds.
inline constexpr int64_t kTokenLeewaySeconds = 60;
// Longest token (and authorization header) accepted, in bytes.
inline constexpr size_t kMaxTokenBytes = 8192;

// Why a token was refused: a bounded set, the label of whistle_auth_denied_total.
enum class DenyReason {
  kMissing,      // no authorization header (or no identity headers in dev mode)
  kScheme,       // not "Bearer <token>", or more than one authorization header
  kMalformed,    // not three base64url parts, header or payload not JSON, too long
  kAlgorithm,    // alg not ES256/RS256, or not the kid's key type (none, HS256, ...)
  kUnknownKey,   // no kid, or a kid not in the JWKS
  kSignature,    // the signature does not verify with the kid's key
  kExpired,      // exp in the past (beyond the leeway)
  kNotYetValid,  // nbf or iat in the future (beyond the leeway)
  kClaims,       // a claim missing, of the wrong type or malformed (sub, role, ids, exp)
};
inline constexpr DenyReason kAllDenyReasons[] = {
    DenyReason::kMissing,   DenyReason::kScheme,      DenyReason::kMalformed,
    DenyReason::kAlgorithm, DenyReason::kUnknownKey,  DenyReason::kSignature,
    DenyReason::kExpired,   DenyReason::kNotYetValid, DenyReason::kClaims};
// "missing", "scheme", "malformed", "algorithm", "unknown_key", "signature",
// "expired", "not_yet_valid", "claims".
std::string_view ToString(DenyReason reason);

// The identity a verified token carries.
struct Claims {
  std::string user;  // sub
  v1::Role role = v1::ROLE_UNSPECIFIED;
  std::string jurisdiction;  // may be empty
  std::string department;    // may be empty
  int64_t expires_at = 0;    // exp, seconds since the epoch
  int64_t not_before = 0;    // max(nbf, iat) when either is present, else 0
};

// Role names as tokens (and dev headers) carry them: grid_worker, staff,
// department, leader, admin. INVALID_ARGUMENT names `field`.
StatusOr<v1::Role> ParseRoleName(std::string_view field, std::string_view name);
std::string_view RoleName(v1::Role role);

enum class KeyType { kEc256, kRsa };

// The issuer keys of one JWKS file, by kid. Immutable once parsed.
class KeySet {
 public:
  struct Key {
    KeyType type;
    std::string public_pem;  // the public key as PEM (SubjectPublicKeyInfo)
    // The same key, parsed once with the JWKS; every signature of this kid is
    // verified against it (read-only, shared by all threads).
    std::shared_ptr<evp_pkey_st> pkey;
  };

  // Parses a JWKS document ({"keys": [...]}). Every key must be usable (EC
  // P-256 or RSA >= 2048 bits, a unique kid, use "sig" if set, alg agreeing
  // with the type if set); INVALID_ARGUMENT names `source` and the key at fault.
  // An empty set is refused: a node with no keys could not admit anyone.
  static StatusOr<std::shared_ptr<const KeySet>> Parse(std::string_view json,
                                                       std::string_view source);

  const Key* Find(std::string_view kid) const;
  size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, Key, std::less<>> keys_;
};

// A refused token: the reason (metric label) and a short message that never
// quotes the token.
struct Denial {
  DenyReason reason;
  std::string message;
};

// The result of checking a token: claims, or why not.
class Verified {
 public:
  Verified(Claims claims) : claims_(std::move(claims)), ok_(true) {}  // NOLINT
  Verified(Denial denial) : denial_(std::move(denial)) {}             // NOLINT
  bool ok() const { return ok_; }
  const Claims& claims() const { return claims_; }
  const Denial& denial() const { return denial_; }

 private:
  Claims claims_;
  Denial denial_{DenyReason::kMissing, ""};
  bool ok_ = false;
};

// The token of an authorization header value ("Bearer <token>", scheme
// case-insensitive). A denial (kScheme, kMalformed) when it is not one.
Verified ParseBearer(std::string_view header, std::string* token);

// Verifies `token` against `keys` at `now_seconds`: the header's alg and kid
// first, then the signature (OpenSSL, with the kid's parsed key and the scheme
// of its type), then the claims (exp required; nbf and iat optional; sub and
// role required; ids checked with core::CheckId).
Verified VerifyToken(const KeySet& keys, std::string_view token, int64_t now_seconds);

// ---- Issuing (whistlectl token keygen/mint, tests). ----

struct KeyPair {
  std::string private_pem;  // PKCS#8
  std::string jwks_json;    // {"keys": [<the public key, with kid>]}
};

// A fresh key pair: ES256 (P-256) or RS256 (2048-bit RSA).
StatusOr<KeyPair> GenerateKeyPair(KeyType type, std::string_view kid);

// The JWK (as a one-key JWKS document) of the public half of a private key PEM.
StatusOr<std::string> JwksOfPrivateKey(std::string_view private_pem, std::string_view kid);

// A token for `claims` signed with `private_pem` (ES256 for an EC key, RS256
// for RSA), kid in the header, iat = now, exp = now + ttl.
StatusOr<std::string> MintToken(std::string_view private_pem, std::string_view kid,
                                const Claims& claims, int64_t now_seconds, int64_t ttl_seconds);

// Base64url without padding (RFC 4648 section 5); Decode refuses anything else.
std::string Base64UrlEncode(std::string_view bytes);
bool Base64UrlDecode(std::string_view text, std::string* out);

}  // namespace whistle::services
