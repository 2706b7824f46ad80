#include "services/identity.h"

#include <openssl/evp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/log.h"
#include "core/text.h"

namespace whistle::services {

namespace {

constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxJwksBytes = 1 << 20;
// Denials logged per second at most; the rest are counted (metric) and the
// next logged line says how many were left out.
constexpr int kDenialLogsPerSecond = 10;
// Verified tokens remembered (SHA-256 of the exact bytes -> claims) so a
// client's repeated calls do not pay for the signature check each time
// (~0.07 ms of CPU for ES256 with the key parsed at load). Two generations of
// at most this many each: a token used in the last generation stays, the rest
// age out without a full clear. 2 x 65,536 holds every grid worker of a
// 100,000-grid city (~25 MB when full). Emptied on every key reload.
constexpr size_t kVerifiedGeneration = 65536;

// The key a verified token is remembered by: its SHA-256 (32 bytes), so the
// cache holds no token bytes and a long token costs no more memory.
std::string TokenDigest(std::string_view token) {
  // Fetched once: EVP_sha256() looks the implementation up again on every call.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (sha256 == nullptr || EVP_Digest(token.data(), token.size(), md, &len, sha256, nullptr) != 1)
    return {};
  return std::string(reinterpret_cast<const char*>(md), len);
}

// Verified tokens by digest, in two generations (an approximate LRU with O(1)
// steps): hits in the old generation move to the young one; when the young
// one is full it becomes the old one and the old one is dropped.
class VerifiedTokens {
 public:
  std::optional<Claims> Find(const std::string& digest) {
    if (auto it = young_.find(digest); it != young_.end()) return it->second;
    auto it = old_.find(digest);
    if (it == old_.end()) return std::nullopt;
    Claims claims = it->second;
    old_.erase(it);
    Add(digest, claims);
    return claims;
  }
  void Add(const std::string& digest, const Claims& claims) {
    if (young_.size() >= kVerifiedGeneration) {
      old_ = std::move(young_);
      young_.clear();
    }
    young_.insert_or_assign(digest, claims);
  }
  void Clear() {
    young_.clear();
    old_.clear();
  }

 private:
  std::unordered_map<std::string, Claims> young_, old_;
};

// The single value of header `name`; *count says how many there were.
std::string_view Header(const grpc::ServerContextBase& context, const char* name, size_t* count) {
  const auto& md = context.client_metadata();
  auto range = md.equal_range(name);
  *count = 0;
  std::string_view value;
  for (auto it = range.first; it != range.second; ++it) {
    ++*count;
    value = std::string_view(it->second.data(), it->second.size());
  }
  return value;
}

}  // namespace

StatusOr<std::shared_ptr<const KeySet>> LoadKeySet(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("--jwks-file: cannot read " + core::Quote(path));
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().size() > kMaxJwksBytes) {
    return Status::InvalidArgument("--jwks-file " + path + ": larger than 1 MiB");
  }
  return KeySet::Parse(text.str(), "--jwks-file " + path);
}

struct Authenticator::Impl {
  bool dev_header_identity = false;
  mutable std::mutex mu;
  std::shared_ptr<const KeySet> keys;  // guarded by mu

  prometheus::Gauge* keys_loaded = nullptr;
  prometheus::Counter* reloads_ok = nullptr;
  prometheus::Counter* reloads_failed = nullptr;
  std::map<DenyReason, prometheus::Counter*> denied;

  // Tokens verified under the current keys (guarded by mu; cleared with them).
  mutable VerifiedTokens verified;

  mutable std::mutex log_mu;
  mutable int64_t log_second = 0;
  mutable int logged_this_second = 0;
  mutable int64_t suppressed = 0;

  std::shared_ptr<const KeySet> Keys() const {
    std::lock_guard lock(mu);
    return keys;
  }

  Status Deny(const grpc::ServerContextBase& context, const Denial& denial) const {
    auto it = denied.find(denial.reason);
    if (it != denied.end()) it->second->Increment();
    LogDenial(context, denial);
    return Status::Unauthenticated(denial.message);
  }

  void LogDenial(const grpc::ServerContextBase& context, const Denial& denial) const {
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
    int64_t left_out = 0;
    {
      std::lock_guard lock(log_mu);
      if (now != log_second) {
        log_second = now;
        logged_this_second = 0;
      }
      if (++logged_this_second > kDenialLogsPerSecond) {
        ++suppressed;
        return;
      }
      left_out = std::exchange(suppressed, 0);
    }
    // The reason and the peer only: never the token or a claim's bytes.
    Log(LogLevel::kWarn, "caller not authenticated",
        {{"reason", std::string(ToString(denial.reason))},
         {"detail", denial.message},
         {"peer", context.peer()},
         {"denials_not_logged", std::to_string(left_out)}});
  }

  StatusOr<v1::Caller> FromToken(const grpc::ServerContextBase& context) const {
    size_t count = 0;
    std::string_view header = Header(context, kAuthorizationHeader, &count);
    if (count == 0) {
      return Deny(context, {DenyReason::kMissing,
                            "authorization: missing; send \"Bearer <token>\" (whistlectl "
                            "--token-file or WHISTLE_TOKEN)"});
    }
    if (count > 1)
      return Deny(context, {DenyReason::kScheme, "authorization: sent more than once"});
    std::string token;
    Verified bearer = ParseBearer(header, &token);
    if (!bearer.ok()) return Deny(context, bearer.denial());
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    const std::string digest = TokenDigest(token);
    std::shared_ptr<const KeySet> current;
    std::optional<Claims> cached;
    {
      std::lock_guard lock(mu);
      current = keys;
      if (!digest.empty()) cached = verified.Find(digest);
    }
    if (!current) return Deny(context, {DenyReason::kUnknownKey, "token: no issuer keys loaded"});
    // A remembered token is re-checked against the clock only: same bytes,
    // same keys, same signature result.
    if (cached && now >= cached->expires_at + kTokenLeewaySeconds) {
      return Deny(context, {DenyReason::kExpired, "token: expired"});
    }
    if (cached && cached->not_before > now + kTokenLeewaySeconds) cached.reset();
    if (!cached) {
      Verified result = VerifyToken(*current, token, now);
      if (!result.ok()) return Deny(context, result.denial());
      cached = result.claims();
      std::lock_guard lock(mu);
      if (keys == current && !digest.empty()) verified.Add(digest, *cached);  // not reloaded
    }
    const Claims& claims = *cached;
    v1::Caller caller;
    caller.set_user(claims.user);
    caller.set_role(claims.role);
    caller.set_jurisdiction_id(claims.jurisdiction);
    caller.set_department_id(claims.department);
    return caller;
  }

  // --dev-header-identity: the x-whistle-* headers, checked like claims.
  StatusOr<v1::Caller> FromHeaders(const grpc::ServerContextBase& context) const {
    size_t count = 0;
    std::string_view user = Header(context, kUserHeader, &count);
    if (count == 0)
      return Deny(context, {DenyReason::kMissing, std::string(kUserHeader) + ": missing"});
    std::string_view role = Header(context, kRoleHeader, &count);
    if (count == 0)
      return Deny(context, {DenyReason::kMissing, std::string(kRoleHeader) + ": missing"});
    if (count > 1)
      return Status::InvalidArgument(std::string(kRoleHeader) + ": sent more than once");
    size_t users = 0;
    Header(context, kUserHeader, &users);
    if (users > 1)
      return Status::InvalidArgument(std::string(kUserHeader) + ": sent more than once");
    if (Status s = core::CheckId(kUserHeader, user, kMaxIdBytes); !s.ok()) return s;
    auto parsed = ParseRoleName(kRoleHeader, role);
    if (!parsed.ok()) return parsed.status();
    std::string_view jurisdiction = Header(context, kJurisdictionHeader, &count);
    if (count > 0) {
      if (Status s = core::CheckId(kJurisdictionHeader, jurisdiction, kMaxIdBytes); !s.ok())
        return s;
    }
    std::string_view department = Header(context, kDepartmentHeader, &count);
    if (count > 0) {
      if (Status s = core::CheckId(kDepartmentHeader, department, kMaxIdBytes); !s.ok()) return s;
    }
    v1::Caller caller;
    caller.set_user(std::string(user));
    caller.set_role(*parsed);
    caller.set_jurisdiction_id(std::string(jurisdiction));
    caller.set_department_id(std::string(department));
    return caller;
  }
};

Authenticator::Authenticator(std::shared_ptr<const KeySet> keys, bool dev_header_identity,
                             prometheus::Registry* registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->dev_header_identity = dev_header_identity;
  impl_->keys = std::move(keys);
  if (registry != nullptr) {
    impl_->keys_loaded = &prometheus::BuildGauge()
                              .Name("whistle_auth_keys")
                              .Help("Issuer keys (JWKS entries) the node verifies tokens with.")
                              .Register(*registry)
                              .Add({});
    auto& reloads =
        prometheus::BuildCounter()
            .Name("whistle_auth_jwks_reloads_total")
            .Help("JWKS file reloads (SIGHUP) by result: ok, or failed (old keys kept).")
            .Register(*registry);
    impl_->reloads_ok = &reloads.Add({{"result", "ok"}});
    impl_->reloads_failed = &reloads.Add({{"result", "failed"}});
    auto& denied = prometheus::BuildCounter()
                       .Name("whistle_auth_denied_total")
                       .Help("Calls refused as UNAUTHENTICATED, by reason.")
                       .Register(*registry);
    for (DenyReason reason : kAllDenyReasons) {
      impl_->denied[reason] = &denied.Add({{"reason", std::string(ToString(reason))}});
    }
    impl_->keys_loaded->Set(static_cast<double>(key_count()));
  }
}

Authenticator::~Authenticator() = default;

Status Authenticator::Reload(const std::string& path) {
  auto loaded = LoadKeySet(path);
  if (!loaded.ok()) {
    if (impl_->reloads_failed) impl_->reloads_failed->Increment();
    Log(LogLevel::kError, "issuer keys not reloaded; keeping the old ones",
        {{"jwks_file", path},
         {"error", loaded.status().ToString()},
         {"keys", std::to_string(key_count())}});
    return loaded.status();
  }
  size_t count = (*loaded)->size();
  {
    std::lock_guard lock(impl_->mu);
    impl_->keys = std::move(loaded).value();
    impl_->verified.Clear();  // verified under the old keys: check again
  }
  if (impl_->reloads_ok) impl_->reloads_ok->Increment();
  if (impl_->keys_loaded) impl_->keys_loaded->Set(static_cast<double>(count));
  Log(LogLevel::kInfo, "issuer keys reloaded",
      {{"jwks_file", path}, {"keys", std::to_string(count)}});
  return Status::Ok();
}

size_t Authenticator::key_count() const {
  auto keys = impl_->Keys();
  return keys ? keys->size() : 0;
}

StatusOr<v1::Caller> Authenticator::Authenticate(const grpc::ServerContextBase& context) const {
  return impl_->dev_header_identity ? impl_->FromHeaders(context) : impl_->FromToken(context);
}

StatusOr<core::CheckedCaller> CallerFrom(const Authenticator& auth,
                                         const grpc::ServerContextBase& context,
                                         const core::Context& core) {
  auto authenticated = auth.Authenticate(context);
  if (!authenticated.ok()) return authenticated.status();
  v1::Caller caller = std::move(authenticated).value();
  if (caller.role() == v1::ROLE_ADMIN) {
    return Status::PermissionDenied(
        "role admin operates the node (backups) and does no case work; use a token of a "
        "case-work role");
  }
  if (caller.role() == v1::ROLE_DEPARTMENT) {
    const v1::Department* dept = core.topology.FindDepartment(caller.department_id());
    if (dept != nullptr) {
      if (!caller.jurisdiction_id().empty() &&
          caller.jurisdiction_id() != dept->jurisdiction_id()) {
        return Status::PermissionDenied("department " + core::Quote(caller.department_id()) +
                                        " belongs to " + core::Quote(dept->jurisdiction_id()) +
                                        ", not to the claimed jurisdiction " +
                                        core::Quote(caller.jurisdiction_id()));
      }
      caller.set_jurisdiction_id(dept->jurisdiction_id());
    }
  } else {
    caller.clear_department_id();  // only departments act for a department
  }
  return core::CheckCaller(std::move(caller), core);
}

StatusOr<v1::Caller> AdminFrom(const Authenticator& auth, const grpc::ServerContextBase& context) {
  auto caller = auth.Authenticate(context);
  if (!caller.ok()) return caller.status();
  if (caller->role() != v1::ROLE_ADMIN) {
    return Status::PermissionDenied("role " + std::string(RoleName(caller->role())) +
                                    " may not operate the node; only admin can");
  }
  return caller;
}

}  // namespace whistle::services
