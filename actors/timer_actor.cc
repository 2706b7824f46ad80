// The deadline timer actor. Deadlines live in the store (timers column
// family, written in the same batch as the case), so they survive restarts;
// this actor only polls for due ones and asks each owner to apply "overdue".
#include <unordered_set>

#include "actors/node_context.h"

namespace whistle::actors {

namespace {

constexpr size_t kMaxDuePerTick = 512;

struct TimerState {
  NodeContext* ctx = nullptr;
  std::chrono::milliseconds interval{1000};
  std::unordered_set<std::string> inflight;  // overdue commands not yet answered
  static inline const char* name = "timer";
};

using Self = caf::stateful_actor<TimerState>;

void Tick(Self* self) {
  auto& st = self->state;
  auto due = st.ctx->store().DueTimers(st.ctx->NowMs(), kMaxDuePerTick);
  if (due.ok()) {
    caf::actor me = caf::actor_cast<caf::actor>(self);
    for (const auto& timer : *due) {
      if (!st.inflight.insert(timer.case_id).second) continue;
      CaseRequest req;
      req.caller = core::SystemCaller();
      req.case_id = timer.case_id;
      req.command.mutable_overdue()->set_deadline("timer");
      req.reply = [me, id = timer.case_id](const StatusOr<v1::Case>&) {
        caf::anon_send(me, fired_atom::value, id);
      };
      st.ctx->RouteToOwner(std::move(req));
    }
  }
  self->delayed_send(self, st.interval, tick_atom::value);
}

caf::behavior Timer(Self* self, NodeContext* ctx, int interval_ms) {
  self->state.ctx = ctx;
  self->state.interval = std::chrono::milliseconds(interval_ms);
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) { Tick(self); },
      [self](fired_atom, const std::string& case_id) { self->state.inflight.erase(case_id); },
  };
}

}  // namespace

caf::actor SpawnTimer(caf::actor_system& sys, NodeContext* ctx, int interval_ms) {
  return sys.spawn(Timer, ctx, interval_ms);
}

}  // namespace whistle::actors
