// Identity: who is calling. The one place that establishes a caller.
//
// Every caller presents a signed token, `authorization: Bearer <JWT>` (ES256 or
// RS256), verified against the issuer keys of --jwks-file (services/token.h);
// identity comes only from its verified claims. Only with --dev-header-identity
// (development; off by default) the plain x-whistle-* headers are read instead.
#pragma once

#include <grpcpp/server_context.h>

#include <memory>
#include <string>

#include "core/case_machine.h"
#include "core/status.h"
#include "services/token.h"
#include "whistle/v1/common.pb.h"

namespace prometheus {
class Registry;
}

namespace whistle::services {

inline constexpr char kAuthorizationHeader[] = "authorization";
// Development identity headers (--dev-header-identity only).
inline constexpr char kUserHeader[] = "x-whistle-user";
inline constexpr char kRoleHeader[] = "x-whistle-role";
inline constexpr char kJurisdictionHeader[] = "x-whistle-jurisdiction";
inline constexpr char kDepartmentHeader[] = "x-whistle-department";

// Reads and parses a JWKS file; INVALID_ARGUMENT names the file and the key.
StatusOr<std::shared_ptr<const KeySet>> LoadKeySet(const std::string& path);

// Authenticator: verifies callers. Owns the current issuer keys (replaced as a
// whole by Reload, e.g. on SIGHUP) and the auth metrics. Thread-safe: gRPC
// threads call Authenticate while the main thread reloads.
class Authenticator {
 public:
  // `keys` may be null only with `dev_header_identity`. `registry` null: no metrics.
  Authenticator(std::shared_ptr<const KeySet> keys, bool dev_header_identity,
                prometheus::Registry* registry);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Loads `path` and swaps the keys in; a bad file keeps the old keys. Counted
  // (whistle_auth_jwks_reloads_total) and logged either way.
  Status Reload(const std::string& path);
  size_t key_count() const;

  // The caller as its token says (or its dev headers), every value checked:
  // UNAUTHENTICATED with a short reason (never the token), counted in
  // whistle_auth_denied_total{reason} and logged; INVALID_ARGUMENT naming the
  // header for a malformed dev header. Any role, admin included.
  StatusOr<v1::Caller> Authenticate(const grpc::ServerContextBase& context) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A caller for case work: Authenticate, then
//   - admin: PERMISSION_DENIED (operators back up nodes; they do no case work);
//   - department: its jurisdiction is the topology's, never a claim; a token
//     whose jurisdiction claim differs is PERMISSION_DENIED;
//   - core::CheckCaller (role, ids known to the topology).
StatusOr<core::CheckedCaller> CallerFrom(const Authenticator& auth,
                                         const grpc::ServerContextBase& context,
                                         const core::Context& core);

// A caller for node operation (backups): Authenticate, then PERMISSION_DENIED
// unless the role is admin.
StatusOr<v1::Caller> AdminFrom(const Authenticator& auth, const grpc::ServerContextBase& context);

}  // namespace whistle::services
