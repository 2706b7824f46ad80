#include "services/identity.h"

#include <string>
#include <utility>

namespace whistle::services {

namespace {

std::string Header(const grpc::ServerContextBase& context, const char* name) {
  const auto& md = context.client_metadata();
  auto it = md.find(name);
  return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

}  // namespace

StatusOr<v1::Role> ParseRole(std::string_view name) {
  if (name == "grid_worker") return v1::ROLE_GRID_WORKER;
  if (name == "staff") return v1::ROLE_STAFF;
  if (name == "department") return v1::ROLE_DEPARTMENT;
  if (name == "leader") return v1::ROLE_LEADER;
  return Status::InvalidArgument(std::string(kRoleHeader) + ": unknown role \"" +
                                 std::string(name) +
                                 "\" (want grid_worker, staff, department or leader)");
}

StatusOr<core::CheckedCaller> CallerFrom(const grpc::ServerContextBase& context,
                                         const core::Context& core) {
  std::string user = Header(context, kUserHeader);
  std::string role = Header(context, kRoleHeader);
  if (user.empty()) return Status::Unauthenticated(std::string(kUserHeader) + ": missing");
  if (role.empty()) return Status::Unauthenticated(std::string(kRoleHeader) + ": missing");
  auto parsed = ParseRole(role);
  if (!parsed.ok()) return parsed.status();
  v1::Caller caller;
  caller.set_user(user);
  caller.set_role(*parsed);
  caller.set_jurisdiction_id(Header(context, kJurisdictionHeader));
  caller.set_department_id(Header(context, kDepartmentHeader));
  if (caller.role() == v1::ROLE_DEPARTMENT && caller.jurisdiction_id().empty()) {
    const v1::Department* dept = core.topology.FindDepartment(caller.department_id());
    if (dept != nullptr) caller.set_jurisdiction_id(dept->jurisdiction_id());
  }
  return core::CheckCaller(std::move(caller), core);
}

}  // namespace whistle::services
