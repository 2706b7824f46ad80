// services/token: JWKS parsing, token verification (every way a token can be
// wrong) and minting. Tokens with arbitrary headers and payloads are signed
// here with OpenSSL directly, so the tests reach past what libjwt would build.
#include "services/token.h"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace whistle::services {
namespace {

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

struct Issuer {
  KeyPair pair;
  std::string kid;
};

Issuer MakeIssuer(KeyType type, const std::string& kid) {
  auto pair = GenerateKeyPair(type, kid);
  EXPECT_TRUE(pair.ok()) << pair.status().ToString();
  return Issuer{std::move(pair).value(), kid};
}

std::shared_ptr<const KeySet> KeysOf(const std::string& jwks) {
  auto keys = KeySet::Parse(jwks, "test");
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  return keys.ok() ? *keys : nullptr;
}

// Both issuers' public keys in one JWKS document.
std::string TwoKeyJwks(const Issuer& a, const Issuer& b) {
  auto strip = [](const std::string& doc) {  // the object inside {"keys": [ ... ]}
    size_t open = doc.find('[');
    size_t close = doc.rfind(']');
    return doc.substr(open + 1, close - open - 1);
  };
  return "{\"keys\": [" + strip(a.pair.jwks_json) + "," + strip(b.pair.jwks_json) + "]}";
}

Claims Staff() {
  Claims c;
  c.user = "li.community";
  c.role = v1::ROLE_STAFF;
  c.jurisdiction = "szs.dwk.cc.c1";
  return c;
}

// Signs header.payload (raw JSON, base64url-encoded here) with `pem`:
// ES256 as r||s, RS256 as PKCS#1 v1.5, or HS256 keyed with `hmac_key`.
std::string Sign(const std::string& alg, const std::string& pem, const std::string& header_json,
                 const std::string& payload_json, const std::string& hmac_key = "") {
  std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload_json);
  std::string sig;
  if (alg == "HS256") {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), hmac_key.data(), static_cast<int>(hmac_key.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    sig.assign(reinterpret_cast<char*>(mac), len);
  } else if (alg == "none") {
    return input + ".";
  } else {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key);
    EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string der(len, '\0');
    EVP_DigestSign(md, reinterpret_cast<unsigned char*>(der.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    der.resize(len);
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_is_a(key, "EC")) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
      ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
      sig.assign(64, '\0');
      BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(sig.data()), 32);
      BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(sig.data()) + 32, 32);
      ECDSA_SIG_free(ecdsa);
    } else {
      sig = der;
    }
    EVP_PKEY_free(key);
  }
  return input + "." + Base64UrlEncode(sig);
}

std::string Payload(const std::string& extra = "", int64_t exp_offset = 600) {
  return "{\"sub\":\"li.community\",\"role\":\"staff\",\"jurisdiction\":\"szs.dwk.cc.c1\","
         "\"exp\":" +
         std::to_string(Now() + exp_offset) + extra + "}";
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ec_ = MakeIssuer(KeyType::kEc256, "ec-1");
    rsa_ = MakeIssuer(KeyType::kRsa, "rsa-1");
    keys_ = KeysOf(TwoKeyJwks(ec_, rsa_));
    ASSERT_NE(keys_, nullptr);
  }

  DenyReason Refused(const std::string& token) {
    Verified v = VerifyToken(*keys_, token, Now());
    EXPECT_FALSE(v.ok()) << token;
    // The reason never quotes the token.
    if (!v.ok() && token.size() > 20) {
      EXPECT_EQ(v.denial().message.find(token.substr(0, 20)), std::string::npos);
    }
    return v.ok() ? DenyReason::kMissing : v.denial().reason;
  }

  Issuer ec_, rsa_;
  std::shared_ptr<const KeySet> keys_;
};

TEST_F(TokenTest, MintedTokensOfBothAlgorithmsVerify) {
  for (const Issuer* issuer : {&ec_, &rsa_}) {
    auto token = MintToken(issuer->pair.private_pem, issuer->kid, Staff(), Now(), 3600);
    ASSERT_TRUE(token.ok()) << token.status().ToString();
    Verified v = VerifyToken(*keys_, *token, Now());
    ASSERT_TRUE(v.ok()) << v.denial().message;
    EXPECT_EQ(v.claims().user, "li.community");
    EXPECT_EQ(v.claims().role, v1::ROLE_STAFF);
    EXPECT_EQ(v.claims().jurisdiction, "szs.dwk.cc.c1");
    EXPECT_EQ(v.claims().department, "");
  }
}

TEST_F(TokenTest, HandSignedTokensVerifyToo) {
  // Interoperability: r||s signatures made outside libjwt (as node:crypto and
  // other issuers make them) verify.
  std::string es =
      Sign("ES256", ec_.pair.private_pem, R"({"alg":"ES256","kid":"ec-1"})", Payload());
  std::string rs =
      Sign("RS256", rsa_.pair.private_pem, R"({"alg":"RS256","kid":"rsa-1"})", Payload());
  EXPECT_TRUE(VerifyToken(*keys_, es, Now()).ok());
  EXPECT_TRUE(VerifyToken(*keys_, rs, Now()).ok());
}

TEST_F(TokenTest, ForgedSignatureIsRefused) {
  auto token = MintToken(ec_.pair.private_pem, ec_.kid, Staff(), Now(), 3600);
  ASSERT_TRUE(token.ok());
  // Same header and signature, payload changed to a leader.
  size_t dot1 = token->find('.');
  size_t dot2 = token->find('.', dot1 + 1);
  std::string forged = token->substr(0, dot1 + 1) +
                       Base64UrlEncode(
                           "{\"sub\":\"li.community\",\"role\":\"leader\","
                           "\"jurisdiction\":\"szs\",\"exp\":" +
                           std::to_string(Now() + 600) + "}") +
                       token->substr(dot2);
  EXPECT_EQ(Refused(forged), DenyReason::kSignature);
  // A flipped signature byte.
  std::string flipped = *token;
  char& last = flipped[flipped.size() - 5];
  last = last == 'A' ? 'B' : 'A';
  EXPECT_EQ(Refused(flipped), DenyReason::kSignature);
}

TEST_F(TokenTest, KeyNotInTheSetIsRefused) {
  // Same kid as a trusted key, different private key.
  Issuer stranger = MakeIssuer(KeyType::kEc256, "ec-1");
  auto token = MintToken(stranger.pair.private_pem, "ec-1", Staff(), Now(), 3600);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(Refused(*token), DenyReason::kSignature);
}

TEST_F(TokenTest, UnknownOrMissingKidIsRefused) {
  EXPECT_EQ(
      Refused(Sign("ES256", ec_.pair.private_pem, R"({"alg":"ES256","kid":"nope"})", Payload())),
      DenyReason::kUnknownKey);
  EXPECT_EQ(Refused(Sign("ES256", ec_.pair.private_pem, R"({"alg":"ES256"})", Payload())),
            DenyReason::kUnknownKey);
}

TEST_F(TokenTest, AlgNoneAndHmacWithThePublicKeyAreRefused) {
  EXPECT_EQ(Refused(Sign("none", "", R"({"alg":"none","kid":"ec-1"})", Payload())),
            DenyReason::kAlgorithm);
  // The classic confusion: HS256 keyed with the PEM of the issuer's public key.
  const KeySet::Key* key = keys_->Find("rsa-1");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(
      Refused(Sign("HS256", "", R"({"alg":"HS256","kid":"rsa-1"})", Payload(), key->public_pem)),
      DenyReason::kAlgorithm);
  EXPECT_EQ(Refused(Sign("HS256", "", R"({"alg":"HS256","kid":"ec-1"})", Payload(),
                         keys_->Find("ec-1")->public_pem)),
            DenyReason::kAlgorithm);
  // An extension the verifier would have to understand.
  EXPECT_EQ(
      Refused(Sign("ES256", ec_.pair.private_pem,
                   R"({"alg":"ES256","kid":"ec-1","crit":["exp-ext"],"exp-ext":1})", Payload())),
      DenyReason::kAlgorithm);
  // Algorithms that are valid elsewhere but not accepted here.
  EXPECT_EQ(
      Refused(Sign("ES256", ec_.pair.private_pem, R"({"alg":"ES384","kid":"ec-1"})", Payload())),
      DenyReason::kAlgorithm);
}

TEST_F(TokenTest, AlgMustMatchTheKidsKeyType) {
  // An RS256 token naming the EC key, and the other way round.
  EXPECT_EQ(
      Refused(Sign("RS256", rsa_.pair.private_pem, R"({"alg":"RS256","kid":"ec-1"})", Payload())),
      DenyReason::kAlgorithm);
  EXPECT_EQ(
      Refused(Sign("ES256", ec_.pair.private_pem, R"({"alg":"ES256","kid":"rsa-1"})", Payload())),
      DenyReason::kAlgorithm);
}

TEST_F(TokenTest, TimeClaimsAreCheckedWithLeeway) {
  const std::string h = R"({"alg":"ES256","kid":"ec-1"})";
  const std::string& k = ec_.pair.private_pem;
  EXPECT_EQ(Refused(Sign("ES256", k, h, Payload("", -120))), DenyReason::kExpired);
  EXPECT_TRUE(VerifyToken(*keys_, Sign("ES256", k, h, Payload("", -30)), Now()).ok());
  EXPECT_EQ(Refused(Sign("ES256", k, h, Payload(",\"nbf\":" + std::to_string(Now() + 300)))),
            DenyReason::kNotYetValid);
  EXPECT_EQ(Refused(Sign("ES256", k, h, Payload(",\"iat\":" + std::to_string(Now() + 300)))),
            DenyReason::kNotYetValid);
  EXPECT_TRUE(VerifyToken(*keys_,
                          Sign("ES256", k, h, Payload(",\"nbf\":" + std::to_string(Now() + 30))),
                          Now())
                  .ok());
  // exp is required and must be an integer.
  EXPECT_EQ(Refused(Sign("ES256", k, h, R"({"sub":"a","role":"staff","jurisdiction":"szs"})")),
            DenyReason::kClaims);
  EXPECT_EQ(Refused(Sign("ES256", k, h, R"({"sub":"a","role":"staff","exp":"9999999999"})")),
            DenyReason::kClaims);
  EXPECT_EQ(Refused(Sign("ES256", k, h, R"({"sub":"a","role":"staff","exp":9999999999.5})")),
            DenyReason::kClaims);
}

TEST_F(TokenTest, ClaimsAreCheckedAtTheDoor) {
  const std::string h = R"({"alg":"ES256","kid":"ec-1"})";
  const std::string& k = ec_.pair.private_pem;
  const std::string exp = ",\"exp\":" + std::to_string(Now() + 600);
  for (const std::string body : {
           R"({"role":"staff")",                      // no sub
           R"({"sub":"a")",                           // no role
           R"({"sub":"a","role":"root")",             // unknown role
           R"({"sub":"M\u00fcller","role":"staff")",  // outside the id charset
           R"({"sub":"a b","role":"staff")",          // space
           R"({"sub":7,"role":"staff")",              // wrong type
           R"({"sub":"a","role":"staff","jurisdiction":["szs"])",
           R"({"sub":"a","role":"staff","department":"x\ny")",
       }) {
    EXPECT_EQ(Refused(Sign("ES256", k, h, body + exp + "}")), DenyReason::kClaims) << body;
  }
  Verified admin =
      VerifyToken(*keys_, Sign("ES256", k, h, R"({"sub":"ops","role":"admin")" + exp + "}"), Now());
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin.claims().role, v1::ROLE_ADMIN);
}

TEST_F(TokenTest, MalformedTokensAreRefused) {
  auto token = MintToken(ec_.pair.private_pem, ec_.kid, Staff(), Now(), 3600);
  ASSERT_TRUE(token.ok());
  const std::string good = *token;
  for (const std::string bad : {
           std::string(""),
           std::string("abc"),
           std::string("a.b"),
           std::string("a.b.c.d"),
           std::string(".."),
           good + ".x",
           std::string("!!!.") + good.substr(good.find('.') + 1),
           Base64UrlEncode("not json") + good.substr(good.find('.')),
           Base64UrlEncode("[1,2]") + good.substr(good.find('.')),
           good.substr(0, good.find('.') + 1) + Base64UrlEncode("[1]") +
               good.substr(good.rfind('.')),
           good.substr(0, good.rfind('.') + 1) + "*",
           std::string(9000, 'a') + ".b.c",
       }) {
    EXPECT_EQ(Refused(bad), DenyReason::kMalformed) << bad.substr(0, 60);
  }
}

// ---- The parsed-key path: each JWKS key is parsed once (KeySet::Parse) and
// every signature of its kid is checked against it, with the scheme of the
// key's type, never the one the header asks for.

// A token's three parts, the signature decoded.
struct Parts {
  std::string input;  // header.payload, as signed
  std::string signature;
};
Parts Split(const std::string& token) {
  Parts parts;
  parts.input = token.substr(0, token.rfind('.'));
  EXPECT_TRUE(Base64UrlDecode(token.substr(token.rfind('.') + 1), &parts.signature));
  return parts;
}
std::string Join(const Parts& parts) {
  return parts.input + "." + Base64UrlEncode(parts.signature);
}

// RS256-shaped signatures made with other schemes of the same RSA key.
std::string RsaSign(const std::string& pem, const std::string& input, const EVP_MD* md,
                    int padding) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, md, nullptr, key);
  EVP_PKEY_CTX_set_rsa_padding(pctx, padding);
  size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return sig;
}

TEST_F(TokenTest, EachKidsKeyIsParsedOnceFromTheJwks) {
  for (const auto& [kid, type] : {std::pair{"ec-1", "EC"}, std::pair{"rsa-1", "RSA"}}) {
    const KeySet::Key* key = keys_->Find(kid);
    ASSERT_NE(key, nullptr);
    ASSERT_NE(key->pkey, nullptr) << kid;
    EXPECT_TRUE(EVP_PKEY_is_a(key->pkey.get(), type)) << kid;
    // The very key of the JWKS entry (same as its PEM form)...
    BIO* bio = BIO_new_mem_buf(key->public_pem.data(), static_cast<int>(key->public_pem.size()));
    EVP_PKEY* from_pem = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    ASSERT_NE(from_pem, nullptr);
    EXPECT_EQ(EVP_PKEY_eq(key->pkey.get(), from_pem), 1) << kid;
    EVP_PKEY_free(from_pem);
    // ...and not the other kid's.
    const KeySet::Key* other = keys_->Find(std::string(kid) == "ec-1" ? "rsa-1" : "ec-1");
    EXPECT_NE(EVP_PKEY_eq(key->pkey.get(), other->pkey.get()), 1);
    // Verifying uses it as it is: no copy is made per token.
    const long uses = key->pkey.use_count();
    const Issuer& issuer = std::string(kid) == "ec-1" ? ec_ : rsa_;
    for (int i = 0; i < 20; ++i) {
      Claims c = Staff();
      c.user = "u" + std::to_string(i);
      auto token = MintToken(issuer.pair.private_pem, kid, c, Now(), 600);
      ASSERT_TRUE(token.ok());
      EXPECT_TRUE(VerifyToken(*keys_, *token, Now()).ok());
    }
    EXPECT_EQ(keys_->Find(kid)->pkey.get(), key->pkey.get());
    EXPECT_EQ(key->pkey.use_count(), uses);
  }
}

// Parsing the key on every verification cost ~0.4-0.7 ms of CPU (OpenSSL 3's
// PEM decoders); with the parsed key an ES256 check is ~0.07 ms. Measured
// against the cost of parsing that key's PEM once, on the same thread (CPU
// time: other processes do not count), so the test holds on slow or
// instrumented builds: a verifier that parses the key per token cannot be
// cheaper than the parse alone.
TEST_F(TokenTest, VerifyingDoesNotParseTheKeyAgain) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 300; ++i) {
    Claims c = Staff();
    c.user = "grid.worker." + std::to_string(i);
    auto token = MintToken(ec_.pair.private_pem, ec_.kid, c, Now(), 600);
    ASSERT_TRUE(token.ok());
    tokens.push_back(*token);
  }
  auto cpu_us = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000.0 + ts.tv_nsec / 1000.0;
  };
  const int64_t now = Now();
  ASSERT_TRUE(VerifyToken(*keys_, tokens[0], now).ok());  // warm OpenSSL's method caches
  double start = cpu_us();
  for (const std::string& token : tokens) ASSERT_TRUE(VerifyToken(*keys_, token, now).ok());
  const double per_token = (cpu_us() - start) / static_cast<double>(tokens.size());
  const std::string& pem = keys_->Find("ec-1")->public_pem;
  start = cpu_us();
  for (size_t i = 0; i < tokens.size(); ++i) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    ASSERT_NE(key, nullptr);
    EVP_PKEY_free(key);
    BIO_free(bio);
  }
  const double per_parse = (cpu_us() - start) / static_cast<double>(tokens.size());
  RecordProperty("es256_verify_cpu_us", std::to_string(per_token));
  std::printf("ES256 VerifyToken: %.1f us of CPU per token; parsing the PEM key: %.1f us\n",
              per_token, per_parse);
  EXPECT_LT(per_token, per_parse);
}

// gRPC threads verify at once against the one parsed key of a kid: every good
// token passes and every forged one fails on every thread.
TEST_F(TokenTest, ThreadsShareTheParsedKeys) {
  std::vector<std::string> good, forged;
  for (int i = 0; i < 40; ++i) {
    Claims c = Staff();
    c.user = "u" + std::to_string(i);
    const Issuer& issuer = i % 2 == 0 ? ec_ : rsa_;
    auto token = MintToken(issuer.pair.private_pem, issuer.kid, c, Now(), 600);
    ASSERT_TRUE(token.ok());
    good.push_back(*token);
    Parts parts = Split(*token);
    parts.signature[parts.signature.size() / 2] ^= 0x10;
    forged.push_back(Join(parts));
  }
  std::atomic<int> accepted{0}, refused{0}, wrong{0};
  std::vector<std::thread> threads;
  const int64_t now = Now();
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < good.size(); ++i) {
          const size_t k = (i + static_cast<size_t>(t) * 7) % good.size();
          if (VerifyToken(*keys_, good[k], now).ok()) {
            ++accepted;
          } else {
            ++wrong;
          }
          Verified bad = VerifyToken(*keys_, forged[k], now);
          if (!bad.ok() && bad.denial().reason == DenyReason::kSignature) {
            ++refused;
          } else {
            ++wrong;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(accepted.load(), 8 * 5 * 40);
  EXPECT_EQ(refused.load(), 8 * 5 * 40);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(TokenTest, AKidsTokenSignedWithAnotherTrustedKeyIsRefused) {
  // Two trusted keys of each type: a token must verify with the key its kid
  // names, not with whichever key of the set would accept it.
  Issuer ec2 = MakeIssuer(KeyType::kEc256, "ec-2");
  Issuer rsa2 = MakeIssuer(KeyType::kRsa, "rsa-2");
  auto both = KeysOf(TwoKeyJwks(ec_, ec2));
  auto both_rsa = KeysOf(TwoKeyJwks(rsa_, rsa2));
  ASSERT_TRUE(both && both_rsa);
  struct Case {
    const KeySet* keys;
    const Issuer* signer;
    std::string alg, kid;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{{both.get(), &ec_, "ES256", "ec-1", true},
                                         {both.get(), &ec2, "ES256", "ec-2", true},
                                         {both.get(), &ec2, "ES256", "ec-1", false},
                                         {both.get(), &ec_, "ES256", "ec-2", false},
                                         {both_rsa.get(), &rsa_, "RS256", "rsa-1", true},
                                         {both_rsa.get(), &rsa2, "RS256", "rsa-2", true},
                                         {both_rsa.get(), &rsa2, "RS256", "rsa-1", false},
                                         {both_rsa.get(), &rsa_, "RS256", "rsa-2", false}}) {
    std::string token = Sign(c.alg, c.signer->pair.private_pem,
                             R"({"alg":")" + c.alg + R"(","kid":")" + c.kid + R"("})", Payload());
    Verified v = VerifyToken(*c.keys, token, Now());
    EXPECT_EQ(v.ok(), c.ok) << c.signer->kid << " as " << c.kid;
    if (!c.ok && !v.ok()) {
      EXPECT_EQ(v.denial().reason, DenyReason::kSignature);
    }
  }
}

TEST_F(TokenTest, TheHeadersAlgNeverPicksTheScheme) {
  // HS256 keyed with every form a JWKS reader holds of the public key: refused
  // for the alg, whatever the MAC.
  const KeySet::Key* ec = keys_->Find("ec-1");
  const KeySet::Key* rsa = keys_->Find("rsa-1");
  auto der = [](const KeySet::Key* key) {
    unsigned char* out = nullptr;
    int len = i2d_PUBKEY(key->pkey.get(), &out);
    std::string bytes(reinterpret_cast<char*>(out), len > 0 ? len : 0);
    OPENSSL_free(out);
    return bytes;
  };
  for (const auto& [kid, secret] :
       std::vector<std::pair<std::string, std::string>>{{"ec-1", ec->public_pem},
                                                        {"ec-1", der(ec)},
                                                        {"ec-1", ec_.pair.jwks_json},
                                                        {"rsa-1", rsa->public_pem},
                                                        {"rsa-1", der(rsa)},
                                                        {"rsa-1", rsa_.pair.jwks_json},
                                                        {"rsa-1", ""}}) {
    for (const std::string alg : {"HS256", "HS384", "HS512"}) {
      EXPECT_EQ(Refused(Sign("HS256", "", R"({"alg":")" + alg + R"(","kid":")" + kid + R"("})",
                             Payload(), secret)),
                DenyReason::kAlgorithm)
          << alg << " " << kid;
    }
  }
  // "none" in any spelling, with or without a (valid ES256) signature.
  std::string valid =
      Sign("ES256", ec_.pair.private_pem, R"({"alg":"ES256","kid":"ec-1"})", Payload());
  for (const std::string alg : {"none", "None", "NONE", "", "es256", "ES256 ", "PS256"}) {
    std::string header = R"({"alg":")" + alg + R"(","kid":"ec-1"})";
    std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(Payload());
    EXPECT_EQ(Refused(input + "."), DenyReason::kAlgorithm) << alg;
    // The signature of the same payload under an ES256 header.
    Parts signed_parts = Split(valid);
    EXPECT_EQ(Refused(input + "." + Base64UrlEncode(signed_parts.signature)),
              DenyReason::kAlgorithm)
        << alg;
  }
  // An RSA key's scheme is PKCS#1 v1.5 over SHA-256, whatever else that key
  // could sign: PSS, or another digest, under alg RS256 are refused.
  std::string header = Base64UrlEncode(R"({"alg":"RS256","kid":"rsa-1"})");
  std::string input = header + "." + Base64UrlEncode(Payload());
  EXPECT_TRUE(VerifyToken(*keys_,
                          input + "." +
                              Base64UrlEncode(RsaSign(rsa_.pair.private_pem, input, EVP_sha256(),
                                                      RSA_PKCS1_PADDING)),
                          Now())
                  .ok());
  EXPECT_EQ(Refused(input + "." +
                    Base64UrlEncode(RsaSign(rsa_.pair.private_pem, input, EVP_sha256(),
                                            RSA_PKCS1_PSS_PADDING))),
            DenyReason::kSignature);
  EXPECT_EQ(Refused(input + "." +
                    Base64UrlEncode(
                        RsaSign(rsa_.pair.private_pem, input, EVP_sha512(), RSA_PKCS1_PADDING))),
            DenyReason::kSignature);
}

TEST_F(TokenTest, SignaturesOutsideTheJwsEncodingAreRefused) {
  const std::string h = R"({"alg":"ES256","kid":"ec-1"})";
  const std::string es = Sign("ES256", ec_.pair.private_pem, h, Payload());
  ASSERT_TRUE(VerifyToken(*keys_, es, Now()).ok());
  Parts good = Split(es);
  ASSERT_EQ(good.signature.size(), 64u);
  auto refused = [&](const std::string& signature, const std::string& what) {
    Parts bad = good;
    bad.signature = signature;
    EXPECT_EQ(Refused(Join(bad)), DenyReason::kSignature) << what;
  };
  // r = s = 0 (the "psychic signature", CVE-2022-21449), and r = s = n.
  refused(std::string(64, '\0'), "r = s = 0");
  const std::string n =
      "\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"
      "\xBC\xE6\xFA\xAD\xA7\x17\x9E\x84\xF3\xB9\xCA\xC2\xFC\x63\x25\x51";
  refused(n + n, "r = s = n");
  refused(good.signature.substr(0, 32) + n, "s = n");
  // The same signature DER-encoded (what OpenSSL itself produces), padded,
  // truncated, or with a byte flipped in r.
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(
      sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(good.signature.data()), 32, nullptr),
      BN_bin2bn(reinterpret_cast<const unsigned char*>(good.signature.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ASSERT_GT(der_len, 0);
  refused(std::string(reinterpret_cast<char*>(der), der_len), "DER");
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  refused(good.signature + std::string(1, '\0'), "65 bytes");
  refused(std::string(1, '\0') + good.signature, "65 bytes, leading zero");
  refused(good.signature.substr(0, 63), "63 bytes");
  std::string flipped = good.signature;
  flipped[5] = static_cast<char>(flipped[5] ^ 0x01);
  refused(flipped, "a bit of r flipped");
  // RS256: exactly the modulus length.
  const std::string rs =
      Sign("RS256", rsa_.pair.private_pem, R"({"alg":"RS256","kid":"rsa-1"})", Payload());
  ASSERT_TRUE(VerifyToken(*keys_, rs, Now()).ok());
  Parts rsa_good = Split(rs);
  ASSERT_EQ(rsa_good.signature.size(), 256u);
  Parts longer = rsa_good;
  longer.signature = std::string(1, '\0') + rsa_good.signature;
  EXPECT_EQ(Refused(Join(longer)), DenyReason::kSignature);
  Parts shorter = rsa_good;
  shorter.signature = rsa_good.signature.substr(1);
  EXPECT_EQ(Refused(Join(shorter)), DenyReason::kSignature);
  Parts zero = rsa_good;
  zero.signature = std::string(256, '\0');
  EXPECT_EQ(Refused(Join(zero)), DenyReason::kSignature);
}

// A key rotated under the same kid: each KeySet verifies with its own parsed
// key (nothing is remembered by kid across loads), and an old set still in use
// by a call in flight keeps working while a new one is loaded.
TEST(TokenKeyRotationTest, ARotatedKeyUnderTheSameKidReplacesTheOldOne) {
  for (KeyType type : {KeyType::kEc256, KeyType::kRsa}) {
    Issuer before = MakeIssuer(type, "k");
    Issuer after = MakeIssuer(type, "k");
    auto old_keys = KeysOf(before.pair.jwks_json);
    auto old_token = MintToken(before.pair.private_pem, "k", Staff(), Now(), 600);
    ASSERT_TRUE(old_token.ok());
    ASSERT_TRUE(VerifyToken(*old_keys, *old_token, Now()).ok());
    auto new_keys = KeysOf(after.pair.jwks_json);
    auto new_token = MintToken(after.pair.private_pem, "k", Staff(), Now(), 600);
    ASSERT_TRUE(new_token.ok());
    EXPECT_TRUE(VerifyToken(*new_keys, *new_token, Now()).ok());
    Verified stale = VerifyToken(*new_keys, *old_token, Now());
    ASSERT_FALSE(stale.ok());
    EXPECT_EQ(stale.denial().reason, DenyReason::kSignature);
    EXPECT_TRUE(VerifyToken(*old_keys, *old_token, Now()).ok());
    EXPECT_FALSE(VerifyToken(*old_keys, *new_token, Now()).ok());
    // The key outlives the set it came from for as long as someone holds it.
    std::shared_ptr<evp_pkey_st> held = new_keys->Find("k")->pkey;
    new_keys.reset();
    EXPECT_TRUE(EVP_PKEY_is_a(held.get(), type == KeyType::kEc256 ? "EC" : "RSA"));
  }
}

TEST(BearerTest, OnlyTheBearerSchemeIsAccepted) {
  std::string token;
  EXPECT_TRUE(ParseBearer("Bearer a.b.c", &token).ok());
  EXPECT_EQ(token, "a.b.c");
  EXPECT_TRUE(ParseBearer("bearer  a.b.c ", &token).ok());
  EXPECT_EQ(token, "a.b.c");
  EXPECT_EQ(ParseBearer("Basic dXNlcjpwYXNz", &token).denial().reason, DenyReason::kScheme);
  EXPECT_EQ(ParseBearer("a.b.c", &token).denial().reason, DenyReason::kScheme);
  EXPECT_EQ(ParseBearer("Bearer ", &token).denial().reason, DenyReason::kScheme);
  EXPECT_EQ(ParseBearer("Bearer a.b.c\xfc", &token).denial().reason, DenyReason::kMalformed);
  EXPECT_EQ(ParseBearer("Bearer " + std::string(9000, 'a'), &token).denial().reason,
            DenyReason::kMalformed);
}

TEST(KeySetTest, RefusesBadDocumentsNamingTheKey) {
  auto refused = [](const std::string& json, const std::string& needle) {
    auto keys = KeySet::Parse(json, "jwks.json");
    ASSERT_FALSE(keys.ok()) << json;
    EXPECT_EQ(keys.status().code(), Code::kInvalidArgument);
    EXPECT_NE(keys.status().message().find(needle), std::string::npos) << keys.status().message();
  };
  refused("", "jwks.json");
  refused("not json", "not a JWKS");
  refused(R"({"keys": []})", "no keys");
  refused(R"({"keys": [{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]})", "kid");
  refused(R"({"keys": [{"kty":"oct","kid":"a","k":"c2VjcmV0"}]})", "kty");
  refused(R"({"keys": [{"kty":"EC","kid":"a","crv":"P-384","x":"AA","y":"AA"}]})", "crv");
  // A point not on the curve.
  std::string zeros = Base64UrlEncode(std::string(32, '\x01'));
  refused(R"({"keys": [{"kty":"EC","kid":"a","crv":"P-256","x":")" + zeros + R"(","y":")" + zeros +
              R"("}]})",
          "not a valid public key");
  // A small RSA key.
  refused(R"({"keys": [{"kty":"RSA","kid":"a","n":")" + Base64UrlEncode(std::string(64, '\xC5')) +
              R"(","e":"AQAB"}]})",
          "2048");
  auto pair = GenerateKeyPair(KeyType::kEc256, "k1");
  ASSERT_TRUE(pair.ok());
  std::string inner = pair->jwks_json.substr(pair->jwks_json.find('[') + 1);
  inner = inner.substr(0, inner.rfind(']'));
  refused("{\"keys\": [" + inner + "," + inner + "]}", "twice");
  // Encryption keys are skipped; a set of only those has no signature keys.
  refused(R"({"keys": [{"kty":"oct","kid":"e","use":"enc","k":"c2VjcmV0"}]})", "no signature keys");
  // Unknown members are ignored; a good file loads.
  auto keys = KeySet::Parse(
      "{\"extra\": 1, \"keys\": [" + inner + R"(, {"kty":"RSA","kid":"e","use":"enc"}]})",
      "jwks.json");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ((*keys)->size(), 1u);
  EXPECT_NE((*keys)->Find("k1"), nullptr);
  auto same = JwksOfPrivateKey(pair->private_pem, "k1");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, pair->jwks_json);
}

TEST(Base64UrlTest, RoundTripsAndRefusesOtherAlphabets) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    std::string out;
    ASSERT_TRUE(Base64UrlDecode(Base64UrlEncode(s), &out));
    EXPECT_EQ(out, s);
  }
  std::string out;
  EXPECT_FALSE(Base64UrlDecode("ab+/", &out));
  EXPECT_FALSE(Base64UrlDecode("Zm9v=", &out));
  EXPECT_FALSE(Base64UrlDecode("a", &out));
  EXPECT_FALSE(Base64UrlDecode("Zh", &out));  // non-zero leftover bits
}

// What libjwt 1.10.2 itself does, why it no longer verifies signatures here:
// with a key it still accepts whatever alg the header names (HS256 keyed with
// our public PEM verifies), and without a key it checks nothing. VerifyToken
// checks the signature itself and only then lets libjwt read the claims, with
// no key (should libjwt start refusing that, every token would be refused:
// MintedTokensOfBothAlgorithmsVerify fails, nothing is let in).
TEST(LibjwtBehaviourTest, TrustsTheHeadersAlg) {
  auto pair = GenerateKeyPair(KeyType::kRsa, "r");
  ASSERT_TRUE(pair.ok());
  auto keys = KeySet::Parse(pair->jwks_json, "t");
  ASSERT_TRUE(keys.ok());
  const std::string& pem = (*keys)->Find("r")->public_pem;
  std::string hs = Sign("HS256", "", R"({"alg":"HS256","kid":"r"})", Payload(), pem);
  jwt_t* jwt = nullptr;
  EXPECT_EQ(jwt_decode(&jwt, hs.c_str(), reinterpret_cast<const unsigned char*>(pem.data()),
                       static_cast<int>(pem.size())),
            0)
      << "libjwt now refuses HS256 with a public key; the alg check is still needed";
  jwt_free(jwt);
  jwt = nullptr;
  std::string forged = Sign("ES256", pair->private_pem, R"({"alg":"RS256","kid":"r"})", Payload());
  EXPECT_EQ(jwt_decode(&jwt, forged.c_str(), nullptr, 0), 0) << "no key: no signature check";
  jwt_free(jwt);
  // Our verifier refuses both.
  EXPECT_EQ(VerifyToken(**keys, hs, Now()).denial().reason, DenyReason::kAlgorithm);
}

}  // namespace
}  // namespace whistle::services
