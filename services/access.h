// Read access: who may see a case or a subtree. Write access is decided by
// the state machine (core), which knows each command's rule.
#pragma once

#include "core/case_machine.h"
#include "core/status.h"

namespace whistle::services {

// PERMISSION_DENIED unless the caller's jurisdiction contains the case's
// owner, its grid or its intake owner, the caller reported it, or the caller
// is a department summoned or dispatched to it.
Status CheckCanRead(const v1::Caller& caller, const v1::Case& c, const core::Topology& topology);

// PERMISSION_DENIED unless `jurisdiction_id` lies in the caller's subtree.
Status CheckCanReadSubtree(const v1::Caller& caller, const std::string& jurisdiction_id,
                           const core::Topology& topology);

}  // namespace whistle::services
