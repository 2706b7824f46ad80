// Identity: who is calling, read from request metadata. The one place that
// establishes a caller; signed credentials replace plain metadata later by
// swapping this implementation.
#pragma once

#include <grpcpp/server_context.h>

#include "core/case_machine.h"
#include "core/status.h"
#include "whistle/v1/common.pb.h"

namespace whistle::services {

inline constexpr char kUserHeader[] = "x-whistle-user";
inline constexpr char kRoleHeader[] = "x-whistle-role";
inline constexpr char kJurisdictionHeader[] = "x-whistle-jurisdiction";
inline constexpr char kDepartmentHeader[] = "x-whistle-department";

// UNAUTHENTICATED when the user or role header is missing; INVALID_ARGUMENT
// naming the header when a value is malformed or unknown, or the caller field
// when the caller is not well formed (core::CheckCaller, run here once).
StatusOr<core::CheckedCaller> CallerFrom(const grpc::ServerContextBase& context,
                                         const core::Context& core);

// Role names as they travel in metadata: grid_worker, staff, department, leader.
StatusOr<v1::Role> ParseRole(std::string_view name);

}  // namespace whistle::services
