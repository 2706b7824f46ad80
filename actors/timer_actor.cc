// The deadline timer actor. Deadlines live in the store (timers column
// family, written in the same batch as the case), so they survive restarts;
// this actor only polls for due ones and asks each owner to apply "overdue".
//
// A case whose overdue fails (its record is unreadable, its owner is
// unreachable, ...) is retried with a per-case backoff, not on every tick: a
// pile of such cases at the head of the timers must not crowd out the
// healthy ones behind them.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "actors/node_context.h"

namespace whistle::actors {

namespace {

constexpr size_t kMaxDuePerTick = 512;
constexpr int64_t kMaxBackoffMs = 5 * 60 * 1000;
// Most due timers read per tick, counting those skipped while backing off.
constexpr size_t kMaxScanPerTick = 1 << 20;

struct Backoff {
  int64_t retry_at_ms = 0;
  int64_t delay_ms = 0;
};

struct TimerState {
  NodeContext* ctx = nullptr;
  std::chrono::milliseconds interval{1000};
  std::unordered_set<std::string> inflight;          // overdue commands not yet answered
  std::unordered_map<std::string, Backoff> backoff;  // case id -> next retry after a failure
  static inline const char* name = "timer";
};

using Self = caf::stateful_actor<TimerState>;

void Tick(Self* self) {
  auto& st = self->state;
  const int64_t now = st.ctx->NowMs();
  const size_t skipped = st.backoff.size() + st.inflight.size();
  const size_t limit = std::min(kMaxScanPerTick, kMaxDuePerTick + skipped);
  auto due = st.ctx->store().DueTimers(now, limit);
  if (due.ok()) {
    caf::actor me = caf::actor_cast<caf::actor>(self);
    std::unordered_set<std::string> seen;
    size_t sent = 0;
    for (const auto& timer : *due) {
      if (sent == kMaxDuePerTick) break;
      seen.insert(timer.case_id);
      if (auto b = st.backoff.find(timer.case_id);
          b != st.backoff.end() && b->second.retry_at_ms > now) {
        continue;
      }
      if (!st.inflight.insert(timer.case_id).second) continue;
      ++sent;
      CaseRequest req;
      req.caller = core::SystemCaller();
      req.case_id = timer.case_id;
      req.command.mutable_overdue()->set_deadline("timer");
      req.reply = [me, id = timer.case_id](const StatusOr<v1::Case>& result) {
        caf::anon_send(me, fired_atom::value, id, result.ok());
      };
      st.ctx->RouteToOwner(std::move(req));
    }
    // A backed-off case whose timer is no longer due (repaired, moved away)
    // is forgotten; only when the whole due range was read.
    if (due->size() < limit) {
      for (auto it = st.backoff.begin(); it != st.backoff.end();) {
        it = seen.count(it->first) == 0 && st.inflight.count(it->first) == 0 ? st.backoff.erase(it)
                                                                             : std::next(it);
      }
    }
  }
  self->delayed_send(self, st.interval, tick_atom::value);
}

void Fired(Self* self, const std::string& case_id, bool ok) {
  auto& st = self->state;
  st.inflight.erase(case_id);
  if (ok) {
    st.backoff.erase(case_id);
    return;
  }
  Backoff& b = st.backoff[case_id];
  const int64_t interval = std::max<int64_t>(1, st.interval.count());
  b.delay_ms = b.delay_ms == 0 ? 2 * interval : std::min(kMaxBackoffMs, 2 * b.delay_ms);
  b.retry_at_ms = st.ctx->NowMs() + b.delay_ms;
}

caf::behavior Timer(Self* self, NodeContext* ctx, int interval_ms) {
  self->state.ctx = ctx;
  self->state.interval = std::chrono::milliseconds(interval_ms);
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) { Tick(self); },
      [self](fired_atom, const std::string& case_id, bool ok) { Fired(self, case_id, ok); },
  };
}

}  // namespace

caf::actor SpawnTimer(caf::actor_system& sys, NodeContext* ctx, int interval_ms) {
  return sys.spawn(Timer, ctx, interval_ms);
}

}  // namespace whistle::actors
