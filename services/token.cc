#include "services/token.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <utility>

#include "core/text.h"
#include "whistle/v1/auth.pb.h"

namespace whistle::services {

namespace {

constexpr size_t kMaxIdBytes = 128;
constexpr int kMinRsaBits = 2048;
constexpr size_t kMaxJwksKeys = 64;

// ---- OpenSSL handles, freed on scope exit. ----
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct BldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct JwtFree {
  void operator()(jwt_t* p) const { jwt_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;
using Bn = std::unique_ptr<BIGNUM, BnFree>;
using Jwt = std::unique_ptr<jwt_t, JwtFree>;

Denial Deny(DenyReason reason, std::string message) { return Denial{reason, std::move(message)}; }

// Every byte's base64url value, -1 outside the alphabet: one load per byte of
// a token (each call checks all of its bearer's characters).
constexpr std::array<int8_t, 256> kBase64Url = [] {
  std::array<int8_t, 256> t{};
  t.fill(-1);
  for (int i = 0; i < 26; ++i) {
    t['A' + i] = static_cast<int8_t>(i);
    t['a' + i] = static_cast<int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<int8_t>(52 + i);
  t['-'] = 62;
  t['_'] = 63;
  return t;
}();

int Base64UrlValue(char c) { return kBase64Url[static_cast<unsigned char>(c)]; }

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, len > 0 ? static_cast<size_t>(len) : 0);
}

StatusOr<std::string> PublicPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return Status::Internal("cannot write a public key as PEM");
  }
  return BioText(bio.get());
}

// An EVP_PKEY from OpenSSL 3 parameters (EVP_PKEY_fromdata checks an EC point
// lies on the curve).
Pkey FromParams(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* out = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  return Pkey(out);
}

bool PublicCheck(EVP_PKEY* key) {
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  return ctx && EVP_PKEY_public_check(ctx.get()) == 1;
}

// One JWK as a checked key. `where` names it in errors ("keys[2] (kid \"a\")").
StatusOr<KeySet::Key> KeyOf(const v1::Jwk& jwk, const std::string& where) {
  if (!jwk.use().empty() && jwk.use() != "sig") {
    return Status::InvalidArgument(where + ": use must be \"sig\"");
  }
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld) return Status::Internal("out of memory");
  KeySet::Key key{};
  Pkey pkey;
  if (jwk.kty() == "EC") {
    if (!jwk.alg().empty() && jwk.alg() != "ES256") {
      return Status::InvalidArgument(where + ": alg " + core::Quote(jwk.alg()) +
                                     " does not fit an EC key (want ES256)");
    }
    if (jwk.crv() != "P-256") {
      return Status::InvalidArgument(where + ": crv must be \"P-256\"");
    }
    std::string x, y;
    if (!Base64UrlDecode(jwk.x(), &x) || x.size() != 32 || !Base64UrlDecode(jwk.y(), &y) ||
        y.size() != 32) {
      return Status::InvalidArgument(where + ": x and y must be 32 bytes each, base64url");
    }
    std::string point = "\x04" + x + y;  // uncompressed SEC1 point
    if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
            1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) != 1) {
      return Status::Internal("out of memory");
    }
    pkey = FromParams("EC", bld.get());
    key.type = KeyType::kEc256;
  } else if (jwk.kty() == "RSA") {
    if (!jwk.alg().empty() && jwk.alg() != "RS256") {
      return Status::InvalidArgument(where + ": alg " + core::Quote(jwk.alg()) +
                                     " does not fit an RSA key (want RS256)");
    }
    std::string n, e;
    if (!Base64UrlDecode(jwk.n(), &n) || n.empty() || !Base64UrlDecode(jwk.e(), &e) || e.empty() ||
        e.size() > 8) {
      return Status::InvalidArgument(where + ": n and e must be base64url");
    }
    Bn bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), n.size(), nullptr));
    Bn bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), e.size(), nullptr));
    if (!bn_n || !bn_e ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
      return Status::Internal("out of memory");
    }
    pkey = FromParams("RSA", bld.get());
    key.type = KeyType::kRsa;
    if (pkey && EVP_PKEY_get_bits(pkey.get()) < kMinRsaBits) {
      return Status::InvalidArgument(where + ": RSA keys must have at least 2048 bits");
    }
  } else {
    return Status::InvalidArgument(where + ": kty must be \"EC\" or \"RSA\", got " +
                                   core::Quote(jwk.kty()));
  }
  if (!pkey || !PublicCheck(pkey.get())) {
    return Status::InvalidArgument(where + ": not a valid public key");
  }
  auto pem = PublicPem(pkey.get());
  if (!pem.ok()) return pem.status();
  key.public_pem = std::move(pem).value();
  key.pkey = std::shared_ptr<EVP_PKEY>(pkey.release(), PkeyFree());
  return key;
}

// Checks `signature` over `input` (the token's "header.payload") with the
// kid's parsed key. The scheme comes from the key's type, never from the
// token: ES256 = ECDSA P-256 over SHA-256 with the JWS r||s encoding (exactly
// 64 bytes, turned into DER for OpenSSL, which rejects r or s outside
// [1, n-1]); RS256 = RSASSA-PKCS1-v1_5 over SHA-256, a signature exactly as
// long as the modulus.
bool VerifySignature(const KeySet::Key& key, std::string_view input, std::string_view signature) {
  auto bytes = [](std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  std::string der;
  if (key.type == KeyType::kEc256) {
    if (signature.size() != 64) return false;
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(bytes(signature), 32, nullptr);
    BIGNUM* s = BN_bin2bn(bytes(signature) + 32, 32, nullptr);
    if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return false;
    }
    unsigned char* out = nullptr;
    int len = i2d_ECDSA_SIG(sig.get(), &out);
    if (len <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), static_cast<size_t>(len));
    OPENSSL_free(out);
  } else {
    if (signature.size() != static_cast<size_t>(EVP_PKEY_get_size(key.pkey.get()))) return false;
    der = std::string(signature);
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by md
  if (!md || EVP_DigestVerifyInit_ex(md.get(), &pctx, "SHA256", nullptr, nullptr, key.pkey.get(),
                                     nullptr) != 1) {
    return false;
  }
  if (key.type == KeyType::kRsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    return false;
  }
  return EVP_DigestVerify(md.get(), bytes(der), der.size(), bytes(input), input.size()) == 1;
}

StatusOr<std::string> BnParam(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) {
    return Status::Internal(std::string("cannot read key parameter ") + name);
  }
  Bn bn(raw);
  int len = pad > 0 ? pad : BN_num_bytes(bn.get());
  std::string out(static_cast<size_t>(len), '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), len) != len) {
    return Status::Internal(std::string("key parameter too long: ") + name);
  }
  return out;
}

StatusOr<std::string> JwksOf(EVP_PKEY* key, std::string_view kid) {
  v1::Jwks jwks;
  v1::Jwk* jwk = jwks.add_keys();
  jwk->set_kid(std::string(kid));
  jwk->set_use("sig");
  if (EVP_PKEY_is_a(key, "EC")) {
    auto x = BnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
    auto y = BnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    if (!x.ok()) return x.status();
    if (!y.ok()) return y.status();
    jwk->set_kty("EC");
    jwk->set_alg("ES256");
    jwk->set_crv("P-256");
    jwk->set_x(Base64UrlEncode(*x));
    jwk->set_y(Base64UrlEncode(*y));
  } else if (EVP_PKEY_is_a(key, "RSA")) {
    auto n = BnParam(key, OSSL_PKEY_PARAM_RSA_N, 0);
    auto e = BnParam(key, OSSL_PKEY_PARAM_RSA_E, 0);
    if (!n.ok()) return n.status();
    if (!e.ok()) return e.status();
    jwk->set_kty("RSA");
    jwk->set_alg("RS256");
    jwk->set_n(Base64UrlEncode(*n));
    jwk->set_e(Base64UrlEncode(*e));
  } else {
    return Status::InvalidArgument("private key: want an EC P-256 or RSA key");
  }
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(jwks, &out, options).ok()) {
    return Status::Internal("cannot print the JWKS");
  }
  return out;
}

Pkey ReadPrivateKey(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  return Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// Claims are read through libjwt (its parse of the token whose signature
// VerifySignature checked); their JSON types through `payload`, our parse of
// the same signed bytes, because libjwt 1.10 answers a string or fractional
// exp with 0 and no error. Both reads must agree (a document with duplicate
// members could be read two ways).

// A string claim: "" when absent; false when present but not a string.
bool StringClaim(jwt_t* jwt, const google::protobuf::Struct& payload, const char* name,
                 std::string* out) {
  out->clear();
  auto it = payload.fields().find(name);
  if (it == payload.fields().end()) return jwt_get_grant(jwt, name) == nullptr;
  if (it->second.kind_case() != google::protobuf::Value::kStringValue) return false;
  const char* value = jwt_get_grant(jwt, name);
  if (value == nullptr || it->second.string_value() != value) return false;
  *out = value;
  return true;
}

// An integer claim: *present false when absent; false when not an integer.
bool IntClaim(jwt_t* jwt, const google::protobuf::Struct& payload, const char* name, int64_t* out,
              bool* present) {
  auto it = payload.fields().find(name);
  *present = it != payload.fields().end();
  if (!*present) return true;
  if (it->second.kind_case() != google::protobuf::Value::kNumberValue) return false;
  double number = it->second.number_value();
  constexpr double kMaxExact = 9007199254740992.0;  // 2^53
  // Range first: casting a double outside int64_t is undefined.
  if (!(number <= kMaxExact && number >= -kMaxExact) ||
      number != static_cast<double>(static_cast<int64_t>(number))) {
    return false;
  }
  errno = 0;
  long value = jwt_get_grant_int(jwt, name);
  if (errno != 0 || value != static_cast<int64_t>(number)) return false;
  *out = value;
  return true;
}

// Decodes one base64url part and parses it as a JSON object into `message`.
bool ParsePart(std::string_view part, google::protobuf::Message* message) {
  std::string json;
  if (!Base64UrlDecode(part, &json)) return false;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(json, message, options).ok();
}

}  // namespace

std::string_view ToString(DenyReason reason) {
  switch (reason) {
    case DenyReason::kMissing:
      return "missing";
    case DenyReason::kScheme:
      return "scheme";
    case DenyReason::kMalformed:
      return "malformed";
    case DenyReason::kAlgorithm:
      return "algorithm";
    case DenyReason::kUnknownKey:
      return "unknown_key";
    case DenyReason::kSignature:
      return "signature";
    case DenyReason::kExpired:
      return "expired";
    case DenyReason::kNotYetValid:
      return "not_yet_valid";
    case DenyReason::kClaims:
      return "claims";
  }
  return "unknown";
}

StatusOr<v1::Role> ParseRoleName(std::string_view field, std::string_view name) {
  if (name == "grid_worker") return v1::ROLE_GRID_WORKER;
  if (name == "staff") return v1::ROLE_STAFF;
  if (name == "department") return v1::ROLE_DEPARTMENT;
  if (name == "leader") return v1::ROLE_LEADER;
  if (name == "admin") return v1::ROLE_ADMIN;
  return Status::InvalidArgument(std::string(field) + ": unknown role " + core::Quote(name) +
                                 " (want grid_worker, staff, department, leader or admin)");
}

std::string_view RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_GRID_WORKER:
      return "grid_worker";
    case v1::ROLE_STAFF:
      return "staff";
    case v1::ROLE_DEPARTMENT:
      return "department";
    case v1::ROLE_LEADER:
      return "leader";
    case v1::ROLE_ADMIN:
      return "admin";
    default:
      return "";
  }
}

std::string Base64UrlEncode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3F];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 0x3F];
  return out;
}

bool Base64UrlDecode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = Base64UrlValue(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero (one canonical encoding per byte string).
  return (acc & ((1u << bits) - 1)) == 0;
}

StatusOr<std::shared_ptr<const KeySet>> KeySet::Parse(std::string_view json,
                                                      std::string_view source) {
  const std::string where(source);
  if (!core::IsValidUtf8(json)) return Status::InvalidArgument(where + ": not valid UTF-8");
  v1::Jwks jwks;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json), &jwks, options);
  if (!parsed.ok()) {
    return Status::InvalidArgument(where + ": not a JWKS document (" +
                                   std::string(parsed.message().substr(0, 120)) + ")");
  }
  if (jwks.keys().empty()) return Status::InvalidArgument(where + ": no keys");
  if (static_cast<size_t>(jwks.keys_size()) > kMaxJwksKeys) {
    return Status::InvalidArgument(where + ": more than 64 keys");
  }
  auto set = std::make_shared<KeySet>();
  for (int i = 0; i < jwks.keys_size(); ++i) {
    const v1::Jwk& jwk = jwks.keys(i);
    if (jwk.use() == "enc") continue;  // an encryption key: not for signatures
    std::string name = where + ": keys[" + std::to_string(i) + "]";
    if (Status s = core::CheckId(name + ".kid", jwk.kid(), kMaxIdBytes); !s.ok()) return s;
    name += " (kid " + core::Quote(jwk.kid()) + ")";
    auto key = KeyOf(jwk, name);
    if (!key.ok()) return key.status();
    if (!set->keys_.emplace(jwk.kid(), std::move(key).value()).second) {
      return Status::InvalidArgument(name + ": kid used twice");
    }
  }
  if (set->keys_.empty()) return Status::InvalidArgument(where + ": no signature keys");
  return std::shared_ptr<const KeySet>(std::move(set));
}

const KeySet::Key* KeySet::Find(std::string_view kid) const {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : &it->second;
}

Verified ParseBearer(std::string_view header, std::string* token) {
  if (header.size() > kMaxTokenBytes + 16) {
    return Deny(DenyReason::kMalformed, "authorization: longer than 8 KiB");
  }
  constexpr std::string_view kScheme = "bearer ";
  bool bearer = header.size() > kScheme.size();
  for (size_t i = 0; bearer && i < kScheme.size(); ++i) {
    bearer = std::tolower(static_cast<unsigned char>(header[i])) == kScheme[i];
  }
  if (!bearer) return Deny(DenyReason::kScheme, "authorization: want \"Bearer <token>\"");
  std::string_view rest = header.substr(kScheme.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  if (rest.empty()) return Deny(DenyReason::kScheme, "authorization: Bearer without a token");
  for (char c : rest) {
    if (c != '.' && Base64UrlValue(c) < 0) {
      return Deny(DenyReason::kMalformed, "token: characters outside base64url and '.'");
    }
  }
  *token = std::string(rest);
  return Claims{};
}

Verified VerifyToken(const KeySet& keys, std::string_view token, int64_t now) {
  if (token.size() > kMaxTokenBytes)
    return Deny(DenyReason::kMalformed, "token: longer than 8 KiB");
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos ||
      dot1 == 0 || dot2 == dot1 + 1) {
    return Deny(DenyReason::kMalformed, "token: want three parts header.payload.signature");
  }
  v1::JwtHeader header;
  if (!ParsePart(token.substr(0, dot1), &header)) {
    return Deny(DenyReason::kMalformed, "token: header is not base64url JSON");
  }
  google::protobuf::Struct payload;
  if (!ParsePart(token.substr(dot1 + 1, dot2 - dot1 - 1), &payload)) {
    return Deny(DenyReason::kMalformed, "token: payload is not a base64url JSON object");
  }
  std::string signature;
  if (!Base64UrlDecode(token.substr(dot2 + 1), &signature)) {
    return Deny(DenyReason::kMalformed, "token: signature is not base64url");
  }
  // The alg must be ES256 or RS256 and, below, the scheme of the kid's key
  // (see the header comment); anything else is refused before any crypto.
  KeyType want;
  if (header.alg() == "ES256") {
    want = KeyType::kEc256;
  } else if (header.alg() == "RS256") {
    want = KeyType::kRsa;
  } else {
    return Deny(DenyReason::kAlgorithm,
                "token: alg " + core::Quote(header.alg()) + " not accepted (want ES256 or RS256)");
  }
  if (!header.crit().empty()) {
    return Deny(DenyReason::kAlgorithm, "token: header has crit extensions, none are supported");
  }
  if (header.kid().empty()) return Deny(DenyReason::kUnknownKey, "token: header has no kid");
  const KeySet::Key* key = keys.Find(header.kid());
  if (key == nullptr) {
    return Deny(DenyReason::kUnknownKey, "token: unknown kid " + core::Quote(header.kid()));
  }
  if (signature.empty()) return Deny(DenyReason::kMalformed, "token: no signature");
  if (key->type != want) {
    return Deny(DenyReason::kAlgorithm, "token: alg " + header.alg() +
                                            " does not match the key of kid " +
                                            core::Quote(header.kid()));
  }
  // The signature, with the key parsed when the JWKS was loaded and the scheme
  // of its type (checked above to be the header's alg).
  if (!VerifySignature(*key, token.substr(0, dot2), signature)) {
    ERR_clear_error();  // OpenSSL's reasons stay out of this thread's queue
    return Deny(DenyReason::kSignature, "token: signature does not verify");
  }
  // libjwt parses the token whose signature was just checked, to read the
  // claims as before. Without a key it checks no signature (that was ours)
  // and reports alg "none"; it still refuses what it cannot parse (e.g. a typ
  // other than "JWT").
  jwt_t* raw = nullptr;
  const std::string text(token);
  int rc = jwt_decode(&raw, text.c_str(), nullptr, 0);
  Jwt jwt(raw);
  if (rc != 0 || !jwt) return Deny(DenyReason::kSignature, "token: signature does not verify");
  // libjwt read the same header; refuse should it ever disagree with ours.
  const char* kid = jwt_get_header(jwt.get(), "kid");
  const char* alg_text = jwt_get_header(jwt.get(), "alg");
  if (kid == nullptr || header.kid() != kid || alg_text == nullptr || header.alg() != alg_text) {
    return Deny(DenyReason::kAlgorithm, "token: header read two ways");
  }

  int64_t exp = 0, nbf = 0, iat = 0;
  bool has_exp = false, has_nbf = false, has_iat = false;
  if (!IntClaim(jwt.get(), payload, "exp", &exp, &has_exp) || !has_exp) {
    return Deny(DenyReason::kClaims, "token: exp required (an integer)");
  }
  if (!IntClaim(jwt.get(), payload, "nbf", &nbf, &has_nbf)) {
    return Deny(DenyReason::kClaims, "token: nbf must be an integer");
  }
  if (!IntClaim(jwt.get(), payload, "iat", &iat, &has_iat)) {
    return Deny(DenyReason::kClaims, "token: iat must be an integer");
  }
  if (now >= exp + kTokenLeewaySeconds) return Deny(DenyReason::kExpired, "token: expired");
  if ((has_nbf && nbf > now + kTokenLeewaySeconds) ||
      (has_iat && iat > now + kTokenLeewaySeconds)) {
    return Deny(DenyReason::kNotYetValid, "token: not yet valid");
  }

  Claims claims;
  claims.expires_at = exp;
  claims.not_before = std::max(has_nbf ? nbf : 0, has_iat ? iat : 0);
  std::string role;
  if (!StringClaim(jwt.get(), payload, "sub", &claims.user) ||
      !StringClaim(jwt.get(), payload, "role", &role) ||
      !StringClaim(jwt.get(), payload, "jurisdiction", &claims.jurisdiction) ||
      !StringClaim(jwt.get(), payload, "department", &claims.department)) {
    return Deny(DenyReason::kClaims,
                "token: sub, role, jurisdiction and department must be strings");
  }
  if (Status s = core::CheckId("token sub", claims.user, kMaxIdBytes); !s.ok()) {
    return Deny(DenyReason::kClaims, s.message());
  }
  if (role.empty()) return Deny(DenyReason::kClaims, "token role: required");
  auto parsed = ParseRoleName("token role", role);
  if (!parsed.ok()) return Deny(DenyReason::kClaims, parsed.status().message());
  claims.role = *parsed;
  if (!claims.jurisdiction.empty()) {
    if (Status s = core::CheckId("token jurisdiction", claims.jurisdiction, kMaxIdBytes); !s.ok()) {
      return Deny(DenyReason::kClaims, s.message());
    }
  }
  if (!claims.department.empty()) {
    if (Status s = core::CheckId("token department", claims.department, kMaxIdBytes); !s.ok()) {
      return Deny(DenyReason::kClaims, s.message());
    }
  }
  return claims;
}

StatusOr<KeyPair> GenerateKeyPair(KeyType type, std::string_view kid) {
  if (Status s = core::CheckId("kid", kid, kMaxIdBytes); !s.ok()) return s;
  Pkey key(type == KeyType::kEc256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(kMinRsaBits));
  if (!key) return Status::Internal("key generation failed");
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Internal("cannot write the private key as PEM");
  }
  KeyPair out;
  out.private_pem = BioText(bio.get());
  auto jwks = JwksOf(key.get(), kid);
  if (!jwks.ok()) return jwks.status();
  out.jwks_json = std::move(jwks).value();
  return out;
}

StatusOr<std::string> JwksOfPrivateKey(std::string_view private_pem, std::string_view kid) {
  if (Status s = core::CheckId("kid", kid, kMaxIdBytes); !s.ok()) return s;
  Pkey key = ReadPrivateKey(private_pem);
  if (!key) return Status::InvalidArgument("private key: not a PEM private key");
  return JwksOf(key.get(), kid);
}

StatusOr<std::string> MintToken(std::string_view private_pem, std::string_view kid,
                                const Claims& claims, int64_t now, int64_t ttl) {
  if (Status s = core::CheckId("kid", kid, kMaxIdBytes); !s.ok()) return s;
  if (ttl <= 0) return Status::InvalidArgument("ttl: must be positive");
  Pkey key = ReadPrivateKey(private_pem);
  if (!key) return Status::InvalidArgument("private key: not a PEM private key");
  jwt_alg_t alg;
  if (EVP_PKEY_is_a(key.get(), "EC") && EVP_PKEY_get_bits(key.get()) == 256) {
    alg = JWT_ALG_ES256;
  } else if (EVP_PKEY_is_a(key.get(), "RSA")) {
    alg = JWT_ALG_RS256;
  } else {
    return Status::InvalidArgument("private key: want an EC P-256 or RSA key");
  }
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return Status::Internal("out of memory");
  Jwt jwt(raw);
  const std::string kid_text(kid);
  bool ok = jwt_add_header(jwt.get(), "kid", kid_text.c_str()) == 0 &&
            jwt_add_grant(jwt.get(), "sub", claims.user.c_str()) == 0 &&
            jwt_add_grant(jwt.get(), "role", std::string(RoleName(claims.role)).c_str()) == 0 &&
            jwt_add_grant_int(jwt.get(), "iat", now) == 0 &&
            jwt_add_grant_int(jwt.get(), "exp", now + ttl) == 0;
  if (ok && !claims.jurisdiction.empty()) {
    ok = jwt_add_grant(jwt.get(), "jurisdiction", claims.jurisdiction.c_str()) == 0;
  }
  if (ok && !claims.department.empty()) {
    ok = jwt_add_grant(jwt.get(), "department", claims.department.c_str()) == 0;
  }
  const std::string pem(private_pem);
  if (!ok || jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(pem.data()),
                         static_cast<int>(pem.size())) != 0) {
    return Status::InvalidArgument("cannot build the token (claims or key)");
  }
  char* encoded = jwt_encode_str(jwt.get());
  if (encoded == nullptr) return Status::Internal("signing failed");
  std::string out(encoded);
  free(encoded);  // libjwt 1.10 has no jwt_free_str; its strings are malloc()ed
  return out;
}

}  // namespace whistle::services
