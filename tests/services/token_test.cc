// services/token: JWKS parsing, token verification (every way a token can be
// wrong) and minting. Tokens with arbitrary headers and payloads are signed
// here with OpenSSL directly, so the tests reach past what libjwt would build.
#include "services/token.h"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <ctime>
#include <memory>
#include <string>

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

// What libjwt 1.10.2 itself does, which the alg check above exists for: with
// a key it still accepts whatever alg the header names (HS256 keyed with our
// public PEM verifies), and without a key it checks nothing.
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
