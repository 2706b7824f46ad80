// Deterministic in-process actor tests: the node's actors run on CAF's test
// coordinator (caf/test/dsl.hpp), driven one message at a time from the
// test thread, over a real storage::Store in a temporary directory.
//
// The store answers on its own thread: each transition's callback sends a
// `committed` message to the actor and then replies. Sending to an idle
// actor pushes it onto the test coordinator's job queue, which is not
// thread-safe, so the answer thread must never run while the test thread
// drives the scheduler. The fixture holds the answer thread at a gate (an
// empty batch whose callback blocks) whenever the scheduler may run;
// Durable() opens the gate and commits an empty batch with CommitAndWait,
// which returns once every earlier callback has run (they run in commit
// order on one thread), then closes the gate again. After Durable() every
// reply and every `committed` message of what was queued before is in
// place, with no polling and no timing.
//
// The gate holds answers, not writes: the commit thread keeps writing, so
// the store may already hold a batch whose actor and caller have not been
// told (as in production). Tests therefore assert what was answered, never
// that the store still lags.
#pragma once

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <stdlib.h>

#include <caf/test/dsl.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "actors/messages.h"
#include "actors/node_context.h"
#include "core/placement.h"
#include "core/policy.h"
#include "core/topology.h"
#include "storage/store.h"
#include "tests/core/callers.h"

namespace whistle::actors::testing {

inline constexpr char kGrid[] = "dwk-s01-c03-g002";
inline constexpr char kCommunity[] = "dwk-s01-c03";
inline constexpr char kStreet[] = "dwk-s01";
inline constexpr char kCounty[] = "dwk";
inline constexpr char kCity[] = "szs";
inline constexpr char kPolice[] = "dwk-s01-police_station";
inline constexpr char kJudicial[] = "dwk-s01-judicial_office";

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/whistle_actors_test_XXXXXX";
    char* dir = mkdtemp(tmpl);
    if (dir != nullptr) path_ = dir;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// test_coordinator_fixture parses CAF's test-engine arguments; give it a
// program name before it is constructed.
struct CafEngineArgs {
  CafEngineArgs() {
    static char name[] = "actors_test";
    static char* argv[] = {name, nullptr};
    caf::test::engine::args(1, argv);
  }
};

// Replies of one request, as they arrive (from the test thread or the
// store's answer thread).
struct Answer {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<StatusOr<v1::Case>> got;  // guarded by mu
  std::string label;                    // its entry in ActorTest::answer_log()

  size_t count() {
    std::lock_guard lock(mu);
    return got.size();
  }
};
using AnswerPtr = std::shared_ptr<Answer>;

// Blocks the store's answer thread until opened.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;

  void Wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return open; });
  }
  void Open() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

// Commands, as the state-machine tests build them.
inline v1::Command Accept() {
  v1::Command c;
  c.mutable_accept();
  return c;
}
inline v1::Command Keep() {
  v1::Command c;
  c.mutable_keep();
  return c;
}
inline v1::Command Escalate(const std::string& reason = "调解未果") {
  v1::Command c;
  c.mutable_escalate()->set_reason(reason);
  return c;
}
inline v1::Command Whistle(const std::vector<std::string>& departments) {
  v1::Command c;
  for (const auto& d : departments) c.mutable_whistle()->add_department_ids(d);
  return c;
}
inline v1::Command ReportIn() {
  v1::Command c;
  c.mutable_report_in()->set_note("已到场");
  return c;
}
inline v1::Command Resolve() {
  v1::Command c;
  c.mutable_resolve()->set_note("done");
  return c;
}
inline v1::Command Verify(bool fixed) {
  v1::Command c;
  c.mutable_verify()->set_fixed(fixed);
  return c;
}
inline v1::Command Close() {
  v1::Command c;
  c.mutable_close();
  return c;
}
inline v1::Command Evaluate(int score) {
  v1::Command c;
  c.mutable_evaluate()->set_score(score);
  return c;
}
inline v1::Command Reject() {
  v1::Command c;
  c.mutable_reject()->set_reason("not ours");
  return c;
}

class ActorTest : public ::testing::Test {
 protected:
  using Fixture = test_coordinator_fixture<caf::actor_system_config>;

  ActorTest();
  ~ActorTest() override;

  // ---- Scheduler ----

  caf::scheduler::test_coordinator& sched() { return caf_->sched; }
  // Runs every actor until no message is left. Returns the messages handled.
  size_t Run() { return caf_->sched.run(); }
  // Lets everything queued in the store become durable and answered (see the
  // top of this file). Replies and `committed` messages are then in place.
  void Durable();
  // Durable(), then Run(): the node is idle again.
  void Settle() {
    Durable();
    Run();
  }

  // The next message `to` handles must be (Ts...), sent by `from` (nullptr:
  // anonymous, as from the node facade or a store callback). Handles exactly
  // that message and returns its content; nullopt (and a failure) otherwise.
  template <class... Ts>
  std::optional<std::tuple<Ts...>> Expect(const caf::actor& to, const caf::actor* from,
                                          const char* what) {
    if (!caf_->sched.prioritize(to)) {
      ADD_FAILURE() << what << ": no message for " << Name(to);
      return std::nullopt;
    }
    auto* dest = &caf_->sched.next_job<caf::abstract_actor>();
    caf::mailbox_element* next = dest->peek_at_next_mailbox_element();
    if (next == nullptr) {
      ADD_FAILURE() << what << ": empty mailbox at " << Name(to);
      return std::nullopt;
    }
    auto got = try_extract<Ts...>(to);
    if (!got) {
      ADD_FAILURE() << what << ": " << Name(to) << " has " << caf::to_string(next->content())
                    << " next";
      return std::nullopt;
    }
    caf::strong_actor_ptr want = from ? caf::actor_cast<caf::strong_actor_ptr>(*from) : nullptr;
    if (next->sender != want) {
      ADD_FAILURE() << what << ": sent by " << caf::to_string(next->sender) << ", want "
                    << (from ? Name(*from) : "anonymous");
    }
    caf_->sched.run_once();
    return std::move(*got);
  }
  std::optional<CaseRequest> ExpectRequest(const caf::actor& to, const char* what) {
    auto got = Expect<case_atom, CaseRequest>(to, nullptr, what);
    if (!got) return std::nullopt;
    return std::get<1>(*got);
  }
  std::optional<Handover> ExpectHandover(const caf::actor& to, const caf::actor& from,
                                         const char* what) {
    auto got = Expect<handover_atom, Handover>(to, &from, what);
    if (!got) return std::nullopt;
    return std::get<1>(*got);
  }
  std::optional<Committed> ExpectCommitted(const caf::actor& to, const char* what) {
    auto got = Expect<committed_atom, Committed>(to, nullptr, what);
    if (!got) return std::nullopt;
    return std::get<1>(*got);
  }
  // Handles the next message of `a` as the test coordinator would, except
  // that the first time the handler makes another actor ready (a send to an
  // idle actor), `inside` runs right then, before the handler goes on: the
  // interleaving a multi-threaded scheduler allows. Returns whether `inside`
  // ran.
  bool RunOnceInterleaved(const caf::actor& a, std::function<void()> inside);
  // True when `a` has a message waiting.
  bool Pending(const caf::actor& a) {
    return caf::actor_cast<caf::abstract_actor*>(a)->peek_at_next_mailbox_element() != nullptr;
  }

  // ---- Requests ----

  caf::actor J(const std::string& id) { return ctx_->JurisdictionActor(id); }
  caf::actor D(const std::string& id) { return ctx_->DepartmentActor(id); }
  std::string Name(const caf::actor& a);

  v1::ReportCommand NeighbourDispute(const std::string& request_id);
  CaseRequest Request(const v1::Caller& caller, const std::string& case_id,
                      const v1::Command& command, AnswerPtr answer);
  // Sends a report (as Node::Report would, to the owner chosen at intake).
  AnswerPtr SendReport(const std::string& request_id, const v1::Caller& caller);
  AnswerPtr SendReport(const std::string& request_id) {
    return SendReport(request_id, grid_worker_);
  }
  // Sends a command straight to actor `to`.
  AnswerPtr Send(const caf::actor& to, const std::string& case_id, const v1::Caller& caller,
                 const v1::Command& command, int hops = 0);
  // Routes a command by the store's owner, as Node::Act does.
  AnswerPtr Route(const std::string& case_id, const v1::Caller& caller, const v1::Command& command);

  // The one reply of `a`; fails when there is none or more than one.
  StatusOr<v1::Case> Result(const AnswerPtr& a);
  // Result(a), which must be OK.
  v1::Case Ok(const AnswerPtr& a);

  // Reports, accepts and settles a neighbour dispute owned by the community.
  v1::Case AcceptedCase(const std::string& request_id = "r1");

  // ---- Observation ----

  // The store's copy.
  v1::Case Stored(const std::string& case_id);
  std::vector<v1::TransitionKind> Kinds(const std::string& case_id);
  // whistle_cases_in_memory: cases held by jurisdiction actors.
  double InMemory();
  // Overwrites the stored case behind the actors' backs (owner index and
  // counts untouched): shows whether an actor reads memory or the store.
  // Commits like Durable(), so call it only when nothing is in flight.
  void Tamper(const std::string& case_id, const std::string& text);
  // Commits `batch` straight to the store, behind the actors' backs, and
  // waits for it (like Durable(): everything queued before is answered too).
  void CommitBehind(storage::Batch batch);

  std::vector<std::string> answer_log() {
    std::lock_guard lock(log_mu_);
    return answer_log_;
  }

  v1::Caller grid_worker_ = whistle::testing::MakeCaller("wang.grid", v1::ROLE_GRID_WORKER, kGrid);
  v1::Caller community_staff_ =
      whistle::testing::MakeCaller("li.community", v1::ROLE_STAFF, kCommunity);
  v1::Caller street_staff_ = whistle::testing::MakeCaller("zhao.street", v1::ROLE_STAFF, kStreet);
  v1::Caller county_leader_ = whistle::testing::MakeCaller("sun.county", v1::ROLE_LEADER, kCounty);
  v1::Caller police_ = whistle::testing::MakeCaller("desk.police", v1::ROLE_DEPARTMENT, kPolice);

  CafEngineArgs engine_args_;
  TempDir dir_;
  std::shared_ptr<const core::Topology> topology_;
  std::shared_ptr<const core::Policy> policy_;
  prometheus::Registry registry_;
  std::unique_ptr<NodeContext> ctx_;
  std::unique_ptr<Fixture> caf_;
  std::shared_ptr<Gate> gate_;

 private:
  void CloseGate();
  void OpenGate();

  std::mutex log_mu_;
  std::vector<std::string> answer_log_;  // labels of replies, in arrival order
  int next_label_ = 0;
};

}  // namespace whistle::actors::testing
