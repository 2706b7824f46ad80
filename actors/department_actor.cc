// The department desk actor. It learns of summons and dispatches, and
// forwards the department's own actions (report in, resolve) to the case
// owner, counting report-ins. The case itself stays the source of truth: a
// desk restarted without its summons list still forwards correctly.
#include "actors/node_context.h"

namespace whistle::actors {

namespace {

struct DepartmentState {
  NodeContext* ctx = nullptr;
  std::string id;
  std::unordered_map<std::string, SummonNotice> pending;  // case id -> summons not yet reported in
  static inline const char* name = "department";
};

using Self = caf::stateful_actor<DepartmentState>;

caf::behavior Department(Self* self, NodeContext* ctx, std::string id) {
  self->state.ctx = ctx;
  self->state.id = std::move(id);
  return {
      [self](summon_atom, SummonNotice& notice) {
        self->state.pending[notice.case_id] = std::move(notice);
      },
      [self](case_atom, CaseRequest& req) {
        if (req.command.has_report_in()) self->state.pending.erase(req.case_id);
        req.hops = 1;
        self->state.ctx->RouteToOwner(std::move(req));
      },
  };
}

}  // namespace

caf::actor SpawnDepartment(caf::actor_system& sys, NodeContext* ctx, std::string id) {
  return sys.spawn(Department, ctx, std::move(id));
}

}  // namespace whistle::actors
