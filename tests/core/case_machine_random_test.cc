// Replays random commands from random callers against random cases and
// checks the invariants the actors rely on.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/case_machine.h"
#include "tests/core/callers.h"

namespace whistle::core {
namespace {

constexpr int kSteps = 10'000;
constexpr int kSlots = 24;
constexpr int64_t kT0 = 1'700'000'000'000;

class RandomWalk {
 public:
  RandomWalk()
      : topology_(*Topology::Build(ShizuishanTopology())),
        policy_(*Policy::Build(DefaultPolicy())),
        ctx_{*topology_, *policy_} {
    // Two townships keep cases close enough that random callers often matter.
    for (const char* township : {"dwk-s01", "pl-s02"}) {
      for (const auto* j : topology_->Subtree(township)) {
        if (j->level() == v1::LEVEL_GRID) grids_.push_back(j->id());
        if (j->level() <= v1::LEVEL_TOWNSHIP) continue;
        jurisdictions_.push_back(j->id());
      }
      jurisdictions_.push_back(township);
    }
    for (const auto& j : {"dwk", "pl", "hn", "szs"}) jurisdictions_.push_back(j);
  }

  template <class T>
  const T& Pick(const std::vector<T>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng_)];
  }
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(int percent) { return Uniform(1, 100) <= percent; }

  v1::Caller MakeCaller(v1::Role role, const std::string& where) {
    return testing::MakeCaller(role == v1::ROLE_GRID_WORKER ? "gw-" + where : "u-" + where, role,
                               where);
  }

  // Departments hanging off the owner or its ancestors (the legal ones).
  std::vector<std::string> NearbyDepartments(const v1::Case& c) {
    std::vector<std::string> out;
    auto path = topology_->Path(c.owner_id());
    path.push_back(topology_->Find(c.owner_id()));
    for (const auto* j : path) {
      for (const auto* d : topology_->DepartmentsOf(j->id())) out.push_back(d->id());
    }
    // Sometimes one from elsewhere, which must be refused.
    out.push_back("hn-s01-police_station");
    return out;
  }

  v1::Caller RandomCaller(const v1::Case& c) {
    int roll = Uniform(0, 99);
    if (roll < 55) {
      // Staff or leader at the owner or an ancestor: usually allowed.
      auto path = topology_->Path(c.owner_id());
      std::string where = c.owner_id();
      if (!path.empty() && Chance(40)) where = Pick(path)->id();
      return MakeCaller(Chance(50) ? v1::ROLE_STAFF : v1::ROLE_LEADER, where);
    }
    if (roll < 65) return MakeCaller(v1::ROLE_GRID_WORKER, c.place().grid_id());
    if (roll < 68) return MakeCaller(v1::ROLE_GRID_WORKER, Pick(grids_));
    if (roll < 73) return MakeCaller(v1::ROLE_STAFF, Pick(jurisdictions_));
    if (roll < 85 && c.summons_size() > 0) {
      return MakeCaller(v1::ROLE_DEPARTMENT,
                        c.summons(Uniform(0, c.summons_size() - 1)).department_id());
    }
    if (roll < 90) return MakeCaller(v1::ROLE_DEPARTMENT, Pick(NearbyDepartments(c)));
    if (roll < 97) return SystemCaller();
    v1::Caller bad = MakeCaller(v1::ROLE_STAFF, "ghost");
    if (Chance(50)) bad.clear_user();
    return bad;
  }

  // A command kind that fits `state`, so walks get deep into the loop.
  int Likely(v1::CaseState state) {
    switch (state) {
      case v1::CASE_STATE_REPORTED:
        return Pick(std::vector<int>{0, 0, 3, 4, 10, 11, 13, 15});
      case v1::CASE_STATE_ACCEPTED:
        return Pick(std::vector<int>{1, 2, 3, 4, 12, 15});
      case v1::CASE_STATE_DISPATCHED:
        return Pick(std::vector<int>{5, 5, 3, 13, 16, 1});
      case v1::CASE_STATE_IN_PROGRESS:
        return Pick(std::vector<int>{5, 6, 6, 1, 4, 13});
      case v1::CASE_STATE_RESOLVED:
        return 7;
      case v1::CASE_STATE_VERIFIED:
        return 8;
      case v1::CASE_STATE_CLOSED:
        return 9;
      default:
        return Uniform(0, 17);
    }
  }

  v1::Command RandomCommand(const v1::Case& c) {
    v1::Command cmd;
    std::string reason = Chance(95) ? "because" : "";
    switch (Chance(50) ? Likely(c.state()) : Uniform(0, 17)) {
      case 0:
        cmd.mutable_accept()->set_note("ok");
        break;
      case 1:
        cmd.mutable_dispatch()->set_department_id(Pick(NearbyDepartments(c)));
        break;
      case 2:
        cmd.mutable_keep();
        break;
      case 3:
        cmd.mutable_escalate()->set_reason(reason);
        break;
      case 4: {
        int n = Uniform(1, 3);
        auto depts = NearbyDepartments(c);
        for (int i = 0; i < n; ++i) cmd.mutable_whistle()->add_department_ids(Pick(depts));
        break;
      }
      case 5:
        cmd.mutable_report_in();
        break;
      case 6:
        cmd.mutable_resolve();
        break;
      case 7:
        cmd.mutable_verify()->set_fixed(Chance(80));
        break;
      case 8:
        cmd.mutable_close();
        break;
      case 9:
        cmd.mutable_evaluate()->set_score(Uniform(0, 6));
        cmd.mutable_evaluate()->set_on_behalf(Chance(40));
        break;
      case 10:
        cmd.mutable_return_case()->set_reason(reason);
        break;
      case 11:
        cmd.mutable_reject()->set_reason(Chance(30) ? reason : "");
        break;
      case 12:
        cmd.mutable_supervise();
        break;
      case 13:
        cmd.mutable_overdue();
        break;
      case 14:
        cmd.mutable_report();
        break;
      case 15: {
        auto* t = cmd.mutable_transfer();
        if (Chance(70)) t->set_to_jurisdiction_id(Pick(jurisdictions_));
        if (Chance(40)) t->set_category(Chance(50) ? "dispute.family" : "environment");
        t->set_reason(reason);
        break;
      }
      case 16:
        cmd.mutable_refuse()->set_reason(reason);
        break;
      default:
        break;  // no action set
    }
    return cmd;
  }

  v1::Case NewCase(int slot, int64_t now) {
    static const std::vector<std::string> kCategories = {"dispute.neighbour", "public_order",
                                                         "safety.fire", "petition", "school"};
    v1::ReportCommand r;
    r.set_request_id("req-" + std::to_string(next_id_));
    r.set_category(Pick(kCategories));
    r.set_severity(static_cast<v1::Severity>(Uniform(1, 4)));
    r.mutable_place()->set_grid_id(Pick(grids_));
    r.set_text("random case");
    v1::Caller reporter = MakeCaller(v1::ROLE_GRID_WORKER, r.place().grid_id());
    auto checked = CheckReport(reporter, r, ctx_);
    EXPECT_TRUE(checked.ok()) << checked.status().ToString();
    auto t = Report(*checked, "szs-" + std::to_string(next_id_++), now, ctx_);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t->next;
  }

  static int64_t ExpectedNextDeadline(const v1::Case& c) {
    std::vector<int64_t> pending = {c.deadlines().accept_by_ms(), c.deadlines().dispatch_by_ms(),
                                    c.deadlines().resolve_by_ms(), c.deadlines().verify_by_ms(),
                                    c.deadlines().evaluate_by_ms()};
    for (const auto& s : c.summons()) {
      if (s.reported_in_at_ms() == 0 && s.done_at_ms() == 0 && s.refused_at_ms() == 0) {
        pending.push_back(s.report_in_by_ms());
      }
    }
    int64_t next = 0;
    for (int64_t d : pending) {
      if (d != 0 && (next == 0 || d < next)) next = d;
    }
    return next;
  }

  // Every step of the default policy has a limit: an open case always has a
  // deadline for its next step, wherever it went (escalation, transfer, refusal).
  static void CheckNextStepDeadline(const v1::Case& c) {
    const auto& d = c.deadlines();
    switch (c.state()) {
      case v1::CASE_STATE_REPORTED:
        ASSERT_NE(d.accept_by_ms(), 0) << c.DebugString();
        break;
      case v1::CASE_STATE_ACCEPTED:
        ASSERT_NE(d.dispatch_by_ms(), 0) << c.DebugString();
        ASSERT_NE(d.resolve_by_ms(), 0) << c.DebugString();
        break;
      case v1::CASE_STATE_DISPATCHED:
      case v1::CASE_STATE_IN_PROGRESS:
        ASSERT_NE(d.resolve_by_ms(), 0) << c.DebugString();
        break;
      case v1::CASE_STATE_RESOLVED:
        ASSERT_NE(d.verify_by_ms(), 0) << c.DebugString();
        break;
      case v1::CASE_STATE_CLOSED:
        ASSERT_TRUE(d.evaluate_by_ms() != 0 || c.evaluation_expired()) << c.DebugString();
        break;
      default:
        break;
    }
  }

  void CheckCase(const v1::Case& c, int64_t successes) {
    ASSERT_EQ(c.history_length(), successes + 1) << c.id();
    ASSERT_EQ(c.next_deadline_ms(), ExpectedNextDeadline(c)) << c.DebugString();
    ASSERT_NE(topology_->Find(c.owner_id()), nullptr) << c.owner_id();
    ASSERT_TRUE(v1::CaseState_IsValid(c.state()));
    ASSERT_NE(c.state(), v1::CASE_STATE_UNSPECIFIED);
    if (c.state() != v1::CASE_STATE_REPORTED) {
      ASSERT_EQ(c.deadlines().accept_by_ms(), 0);
    }
    // Settled: nothing left to time but a closed case's evaluation window and
    // the report-in of a department that never came (it becomes a no-show).
    if (IsSettled(c.state())) {
      const auto& d = c.deadlines();
      ASSERT_EQ(d.accept_by_ms() + d.dispatch_by_ms() + d.resolve_by_ms() + d.verify_by_ms(), 0)
          << c.DebugString();
      if (c.state() != v1::CASE_STATE_CLOSED) ASSERT_EQ(d.evaluate_by_ms(), 0);
    }
    // A transfer sideways hands a case to a unit outside its grid's line.
    if (c.original_category().empty() && !transferred_.count(c.id())) {
      ASSERT_TRUE(topology_->IsWithin(c.place().grid_id(), c.owner_id()));
    }
    ASSERT_NO_FATAL_FAILURE(CheckNextStepDeadline(c));
    // A no-show stays one; a summons never is both refused and done.
    for (const auto& s : c.summons()) {
      ASSERT_FALSE(s.refused_at_ms() != 0 && s.done_at_ms() != 0) << c.DebugString();
      ASSERT_FALSE(s.no_show() && s.reported_in_at_ms() == 0 && s.done_at_ms() != 0)
          << "a department that never reported in was stamped done: " << c.DebugString();
    }
  }

  void Run() {
    int64_t now = kT0;
    std::vector<v1::Case> cases;
    std::vector<int64_t> successes(kSlots, 0);
    for (int i = 0; i < kSlots; ++i) cases.push_back(NewCase(i, now));

    for (int step = 0; step < kSteps; ++step) {
      now += Uniform(0, 3) == 0 ? Uniform(0, 6 * 3600'000) : Uniform(0, 600'000);
      int slot = Uniform(0, kSlots - 1);
      if (cases[slot].state() == v1::CASE_STATE_EVALUATED ||
          cases[slot].state() == v1::CASE_STATE_REJECTED ||
          (cases[slot].state() == v1::CASE_STATE_CLOSED && Chance(5))) {
        cases[slot] = NewCase(slot, now);
        successes[slot] = 0;
      }
      const v1::Case& current = cases[slot];
      v1::Command cmd = RandomCommand(current);
      v1::Caller caller = RandomCaller(current);
      const std::string before = current.SerializeAsString();
      // As the node does: the timer's overdue on the system caller's own
      // path; anything else checked first (a forged system caller fails there).
      StatusOr<Transition> t = Status::Internal("unset");
      if (IsSystemCaller(caller) && cmd.has_overdue()) {
        t = ApplyOverdue(current, cmd.overdue(), now, ctx_);
      } else if (auto checked = CheckCommand(caller, cmd, ctx_); checked.ok()) {
        t = Apply(current, *checked, now, ctx_);
      } else {
        t = checked.status();
      }
      ASSERT_EQ(current.SerializeAsString(), before);
      if (!t.ok()) {
        failures_[t.status().code()]++;
        continue;
      }
      ASSERT_EQ(t->entry.seq(), current.history_length() + 1);
      ASSERT_EQ(t->entry.case_id(), current.id());
      ASSERT_EQ(t->entry.from_state(), current.state());
      ASSERT_EQ(t->entry.to_state(), t->next.state());
      ASSERT_EQ(t->entry.from_jurisdiction_id(), current.owner_id());
      ASSERT_EQ(t->entry.jurisdiction_id(), t->next.owner_id());
      ASSERT_EQ(t->next.updated_at_ms(), now);
      kinds_[t->entry.kind()]++;
      // Anti-gaming: nobody who handled the case verifies or rates it.
      if (t->entry.kind() == v1::TRANSITION_KIND_VERIFY ||
          t->entry.kind() == v1::TRANSITION_KIND_EVALUATE) {
        for (const auto& u : current.handler_users()) ASSERT_NE(u, caller.user());
      }
      if (t->entry.kind() == v1::TRANSITION_KIND_TRANSFER &&
          t->next.owner_id() != current.owner_id()) {
        transferred_.insert(current.id());
      }
      // The no-shows of the case before are no-shows after.
      for (const auto& before_s : current.summons()) {
        if (!before_s.no_show()) continue;
        bool kept = false;
        for (const auto& s : t->next.summons()) {
          kept = kept || (s.department_id() == before_s.department_id() && s.no_show());
        }
        ASSERT_TRUE(kept) << "no-show " << before_s.department_id() << " lost by "
                          << v1::TransitionKind_Name(t->entry.kind());
      }
      cases[slot] = std::move(t->next);
      successes[slot]++;
      ASSERT_NO_FATAL_FAILURE(CheckCase(cases[slot], successes[slot]));
    }
  }

  std::map<v1::TransitionKind, int> kinds_;
  std::set<std::string> transferred_;
  std::map<Code, int> failures_;

 private:
  std::mt19937_64 rng_{20240601};
  std::shared_ptr<const Topology> topology_;
  std::shared_ptr<const Policy> policy_;
  Context ctx_;
  std::vector<std::string> grids_;
  std::vector<std::string> jurisdictions_;
  int next_id_ = 1;
};

TEST(CaseMachineRandomTest, InvariantsHoldOverRandomCommands) {
  RandomWalk walk;
  ASSERT_NO_FATAL_FAILURE(walk.Run());
  std::string summary;
  for (const auto& [kind, n] : walk.kinds_) {
    summary += v1::TransitionKind_Name(kind) + "=" + std::to_string(n) + " ";
  }
  for (const auto& [code, n] : walk.failures_) {
    summary += std::string(ToString(code)) + "=" + std::to_string(n) + " ";
  }
  // The walk must reach every transition, or it proves little.
  for (int k = v1::TRANSITION_KIND_ACCEPT; k <= v1::TRANSITION_KIND_REFUSE; ++k) {
    EXPECT_GT(walk.kinds_[static_cast<v1::TransitionKind>(k)], 0)
        << v1::TransitionKind_Name(static_cast<v1::TransitionKind>(k)) << "\n"
        << summary;
  }
  EXPECT_GT(walk.failures_[Code::kPermissionDenied], 0);
  EXPECT_GT(walk.failures_[Code::kFailedPrecondition], 0);
  EXPECT_GT(walk.failures_[Code::kInvalidArgument], 0);
  std::printf("%s\n", summary.c_str());
}

}  // namespace
}  // namespace whistle::core
