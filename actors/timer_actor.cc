// The deadline timer actor. Deadlines live in the store (timers column
// family, one key per case in due order, written in the same batch as the
// case), so they survive restarts; this actor asks each owner to apply
// "overdue" once a deadline has passed.
//
// It does not poll: it sleeps until the earliest stored deadline has passed
// (at most `max_sleep_ms`, so a jump of the wall clock is noticed), and is
// woken earlier by the store when a commit puts an earlier deadline, and by a
// ManualClock when the test clock moves. Many due at once (after a restart)
// are sent in batches, the next batch as soon as half the last is answered.
//
// A case whose overdue fails (its record is unreadable, its owner is
// unreachable, ...) is retried with a per-case backoff: a pile of such cases
// at the head of the timers must not crowd out the healthy ones behind them.
#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "actors/node_context.h"

namespace whistle::actors {

namespace {

using poke_atom = caf::atom_constant<caf::atom("poke")>;      // a commit put an earlier deadline
using clock_atom = caf::atom_constant<caf::atom("clockmv")>;  // the ManualClock moved

constexpr size_t kBatch = 512;               // overdue commands sent per scan
constexpr size_t kMaxInflight = 2 * kBatch;  // unanswered at once
constexpr int64_t kFirstBackoffMs = 1000;
constexpr int64_t kMaxBackoffMs = 5 * 60 * 1000;
// Most due timers read per scan, counting those skipped while backing off.
constexpr size_t kMaxScanPerTick = 1 << 20;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Backoff {
  int64_t retry_at_ms = 0;
  int64_t delay_ms = 0;
};

struct TimerState {
  NodeContext* ctx = nullptr;
  int64_t max_sleep_ms = 60000;
  // Shared with the store's timer listener: it pokes for a deadline firing
  // before this (kNever while a scan runs, so nothing written meanwhile is missed).
  std::shared_ptr<std::atomic<int64_t>> wake_at;
  int64_t target_ms = kNever;                // when the scheduled tick is due
  uint64_t generation = 0;                   // of the one scheduled tick that counts
  bool draining = false;                     // more due than sent: scan again as answers come
  std::unordered_set<std::string> inflight;  // overdue commands not yet answered
  std::unordered_map<std::string, Backoff> backoff;  // case id -> next retry after a failure
  static inline const char* name = "timer";
};

using Self = caf::stateful_actor<TimerState>;

void SendOverdue(Self* self, const std::string& case_id) {
  caf::actor me = caf::actor_cast<caf::actor>(self);
  CaseRequest req;
  req.caller = core::SystemCaller();
  req.case_id = case_id;
  req.command.mutable_overdue()->set_deadline("timer");
  req.reply = [me, case_id](const StatusOr<v1::Case>& result) {
    caf::anon_send(me, fired_atom::value, case_id, result.ok());
  };
  self->state.ctx->RouteToOwner(std::move(req));
}

// A backed-off case whose timer is no longer due (repaired, moved away) is
// forgotten; only when the whole due range was read.
void ForgetStaleBackoff(TimerState& st, const std::unordered_set<std::string>& seen) {
  for (auto it = st.backoff.begin(); it != st.backoff.end();) {
    it = seen.count(it->first) == 0 && st.inflight.count(it->first) == 0 ? st.backoff.erase(it)
                                                                         : std::next(it);
  }
}

// Sends overdue for deadlines passed at `now` (due < now: a deadline is met
// up to and including its own millisecond), earliest first. Returns the
// number sent, and sets *more when more are due than were read or sent.
size_t SendDue(Self* self, int64_t now, bool* more) {
  auto& st = self->state;
  *more = false;
  if (st.inflight.size() >= kMaxInflight) {
    *more = true;
    return 0;
  }
  const size_t cap = std::min(kBatch, kMaxInflight - st.inflight.size());
  const size_t skipped = st.backoff.size() + st.inflight.size();
  const size_t limit = std::min(kMaxScanPerTick, cap + skipped);
  auto due = st.ctx->store().DueTimers(now - 1, limit);
  if (!due.ok()) return 0;  // retried at the next wake
  std::unordered_set<std::string> seen;
  size_t sent = 0;
  for (const auto& timer : *due) {
    if (sent == cap) break;
    seen.insert(timer.case_id);
    if (auto b = st.backoff.find(timer.case_id);
        b != st.backoff.end() && b->second.retry_at_ms > now) {
      continue;
    }
    if (!st.inflight.insert(timer.case_id).second) continue;
    ++sent;
    SendOverdue(self, timer.case_id);
  }
  *more = sent == cap || due->size() == limit;
  if (due->size() < limit) ForgetStaleBackoff(st, seen);
  return sent;
}

// When the next tick is due: just after the earliest deadline not yet
// passed, a backed-off retry, or max_sleep_ms from now, whichever is first.
int64_t NextWake(const TimerState& st, int64_t now) {
  int64_t next = now + st.max_sleep_ms;
  auto due = st.ctx->store().NextDueMs(now - 1);
  if (due.ok() && due->has_value()) next = std::min(next, **due + 1);
  if (!due.ok()) next = std::min(next, now + kFirstBackoffMs);
  // A retry already due was just sent (or its deadline moved away): waking
  // for it again would spin until its answer comes.
  for (const auto& [id, b] : st.backoff) {
    if (b.retry_at_ms > now && st.inflight.count(id) == 0) next = std::min(next, b.retry_at_ms);
  }
  return next;
}

void Schedule(Self* self, int64_t at_ms, int64_t now) {
  auto& st = self->state;
  st.target_ms = at_ms;
  st.wake_at->store(at_ms, std::memory_order_relaxed);
  const int64_t delay = std::clamp<int64_t>(at_ms - now, 0, st.max_sleep_ms);
  self->delayed_send(self, std::chrono::milliseconds(delay), tick_atom::value, ++st.generation);
}

void Tick(Self* self) {
  auto& st = self->state;
  st.wake_at->store(kNever, std::memory_order_relaxed);  // every commit pokes while we read
  const int64_t now = st.ctx->NowMs();
  bool more = false;
  const size_t sent = SendDue(self, now, &more);
  st.draining = more && (sent > 0 || !st.inflight.empty());
  if (!st.draining) return Schedule(self, NextWake(st, now), now);
  // Draining: answers drive the next scan (Fired); no tick, no pokes.
  ++st.generation;
  st.target_ms = std::numeric_limits<int64_t>::min();
  st.wake_at->store(st.target_ms, std::memory_order_relaxed);
  if (st.inflight.size() <= kBatch) self->send(self, tick_atom::value, st.generation);
}

void Fired(Self* self, const std::string& case_id, bool ok) {
  auto& st = self->state;
  st.inflight.erase(case_id);
  if (ok) {
    st.backoff.erase(case_id);
  } else {
    Backoff& b = st.backoff[case_id];
    b.delay_ms = b.delay_ms == 0 ? kFirstBackoffMs : std::min(kMaxBackoffMs, 2 * b.delay_ms);
    b.retry_at_ms = st.ctx->NowMs() + b.delay_ms;
    if (!st.draining && b.retry_at_ms < st.target_ms) {
      Schedule(self, b.retry_at_ms, st.ctx->NowMs());
    }
  }
  // Half of those in flight answered: the next batch goes out while the rest commit.
  if (st.draining && st.inflight.size() == kBatch) Tick(self);
  if (st.draining && st.inflight.empty()) Tick(self);
}

caf::behavior Timer(Self* self, NodeContext* ctx, int max_sleep_ms,
                    std::shared_ptr<std::atomic<int64_t>> wake_at) {
  self->state.ctx = ctx;
  self->state.max_sleep_ms = std::max(1, max_sleep_ms);
  self->state.wake_at = std::move(wake_at);
  self->send(self, tick_atom::value, uint64_t{0});
  return {
      [self](tick_atom, uint64_t generation) {
        if (generation == self->state.generation) Tick(self);
      },
      [self](poke_atom, int64_t due_ms) {
        auto& st = self->state;
        if (!st.draining && due_ms + 1 < st.target_ms) Tick(self);
      },
      [self](clock_atom) { Tick(self); },
      [self](fired_atom, const std::string& case_id, bool ok) { Fired(self, case_id, ok); },
  };
}

}  // namespace

TimerHandle SpawnTimer(caf::actor_system& sys, NodeContext* ctx, int max_sleep_ms) {
  auto wake_at = std::make_shared<std::atomic<int64_t>>(kNever);
  TimerHandle h;
  h.actor = sys.spawn(Timer, ctx, max_sleep_ms, wake_at);
  ctx->store().SetTimerListener([timer = h.actor, wake_at](int64_t due_ms) {
    if (due_ms + 1 < wake_at->load(std::memory_order_relaxed)) {
      caf::anon_send(timer, poke_atom::value, due_ms);
    }
  });
  if (core::ManualClock* manual = ctx->manual_clock()) {
    h.clock_listener = manual->AddListener(
        [timer = h.actor](int64_t) { caf::anon_send(timer, clock_atom::value); });
  }
  return h;
}

void StopTimer(NodeContext* ctx, TimerHandle& h) {
  if (!h.actor) return;
  ctx->store().SetTimerListener({});
  if (core::ManualClock* manual = ctx->manual_clock(); manual && h.clock_listener != 0) {
    manual->RemoveListener(h.clock_listener);
  }
  caf::anon_send_exit(h.actor, caf::exit_reason::user_shutdown);
}

}  // namespace whistle::actors
