#include "services/access.h"

#include "core/text.h"

namespace whistle::services {

Status CheckCanRead(const v1::Caller& caller, const v1::Case& c, const core::Topology& topology) {
  if (caller.role() == v1::ROLE_DEPARTMENT) {
    if (c.handler_department_id() == caller.department_id()) return Status::Ok();
    for (const auto& s : c.summons()) {
      if (s.department_id() == caller.department_id()) return Status::Ok();
    }
  } else {
    const std::string& mine = caller.jurisdiction_id();
    const bool reporter = caller.user() == c.reporter() && caller.role() == c.reporter_role();
    if (reporter || topology.IsWithin(c.owner_id(), mine) ||
        topology.IsWithin(c.place().grid_id(), mine) || topology.IsWithin(c.routed_to_id(), mine)) {
      return Status::Ok();
    }
  }
  return Status::PermissionDenied("case " + c.id() + " is outside the caller's jurisdiction");
}

Status CheckCanReadSubtree(const v1::Caller& caller, const std::string& jurisdiction_id,
                           const core::Topology& topology) {
  if (topology.Find(jurisdiction_id) == nullptr) {
    return Status::InvalidArgument("jurisdiction_id: unknown jurisdiction " +
                                   core::Quote(jurisdiction_id));
  }
  if (!topology.IsWithin(jurisdiction_id, caller.jurisdiction_id())) {
    return Status::PermissionDenied("jurisdiction " + core::Quote(jurisdiction_id) +
                                    " is outside the caller's jurisdiction " +
                                    core::Quote(caller.jurisdiction_id()));
  }
  return Status::Ok();
}

}  // namespace whistle::services
