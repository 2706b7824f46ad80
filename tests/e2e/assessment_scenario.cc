#include "tests/e2e/assessment_scenario.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "core/policy.h"
#include "core/topology.h"

namespace whistle::testing {

namespace {

constexpr int64_t kMinute = 60 * 1000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kSlot = 29 * kHour;  // one case starts every 29 hours: 50 cases = 60 days

const core::Topology& Tree() {
  static const auto t = *core::Topology::Build(core::ShizuishanTopology());
  return *t;
}

// The test's own day arithmetic: calendar days in UTC+08:00.
int64_t Day(int64_t ms) {
  int64_t shifted = ms + 8 * kHour;
  return shifted >= 0 ? shifted / kDay : -((-shifted + kDay - 1) / kDay);
}

Identity Worker(const std::string& grid) { return {"gw." + grid, "grid_worker", grid, ""}; }
// Staff with a role in the script: different people handle, close and rate.
Identity Staff(const std::string& j, const std::string& who) {
  return {"staff." + who + "." + j, "staff", j, ""};
}
Identity Desk(const std::string& dept) { return {"desk." + dept, "department", "", dept}; }

std::string Township(int i) { return "dwk-s0" + std::to_string(1 + i % 3); }
std::string Community(int i) { return Township(i) + "-c01"; }
std::string Grid(int i) { return Community(i) + "-g00" + std::to_string(1 + (i / 3) % 2); }
std::string Category(int i) {
  static const char* kCategories[] = {"dispute.neighbour", "environment", "infrastructure.road"};
  return kCategories[(i / 6) % 3];
}

bool Missed(const v1::HistoryEntry& e, const std::string& what) {
  if (e.kind() != v1::TRANSITION_KIND_OVERDUE) return false;
  for (const auto& m : e.deadlines_missed()) {
    if (m == what) return true;
  }
  return false;
}

// "report_in:<dept>" in an overdue entry's note: the departments that became no-shows.
std::vector<std::string> NoShowsOf(const v1::HistoryEntry& e) {
  std::vector<std::string> out;
  if (e.kind() != v1::TRANSITION_KIND_OVERDUE) return out;
  const std::string& note = e.note();
  const std::string tag = "report_in:";
  for (size_t p = note.find(tag); p != std::string::npos; p = note.find(tag, p + 1)) {
    size_t start = p + tag.size();
    size_t end = note.find_first_of(", ", start);
    out.push_back(note.substr(start, end == std::string::npos ? std::string::npos : end - start));
  }
  return out;
}

v1::Command Cmd(const std::function<void(v1::Command&)>& fill) {
  v1::Command c;
  fill(c);
  return c;
}

v1::PeriodSpec Range(int64_t from_ms, int64_t to_ms) {
  v1::PeriodSpec p;
  p.set_from_ms(from_ms);
  p.set_to_ms(to_ms);
  return p;
}

v1::PeriodSpec PeriodAt(v1::Period period, int64_t at) {
  v1::PeriodSpec p;
  p.set_period(period);
  p.set_at_ms(at);
  return p;
}

}  // namespace

grpc::Status AssessmentClient::Assess(const Identity& who, const std::string& jurisdiction,
                                      const std::string& department, const v1::PeriodSpec& period,
                                      v1::AssessResponse* out) {
  grpc::ClientContext ctx;
  who.Apply(ctx);
  v1::AssessRequest req;
  req.set_jurisdiction_id(jurisdiction);
  req.set_department_id(department);
  *req.mutable_period() = period;
  return stub_->Assess(&ctx, req, out);
}

grpc::Status AssessmentClient::Rank(const Identity& who, const std::string& jurisdiction,
                                    const std::string& figure, const v1::PeriodSpec& period,
                                    v1::RankResponse* out) {
  grpc::ClientContext ctx;
  who.Apply(ctx);
  v1::RankRequest req;
  req.set_jurisdiction_id(jurisdiction);
  req.set_figure(figure);
  *req.mutable_period() = period;
  return stub_->Rank(&ctx, req, out);
}

AssessmentScenario::AssessmentScenario(std::function<WhistledProcess*(const std::string&)> node_for,
                                       std::function<std::vector<WhistledProcess*>()> clock_nodes)
    : node_for_(std::move(node_for)), clock_nodes_(std::move(clock_nodes)) {}

AssessmentScenario::AssessmentScenario(std::function<WhistledProcess*(const std::string&)> node_for,
                                       std::function<WhistledProcess*()> clock_node)
    : node_for_(std::move(node_for)),
      clock_nodes_([clock_node] { return std::vector<WhistledProcess*>{clock_node()}; }) {}

void AssessmentScenario::Advance(int64_t ms) {
  for (WhistledProcess* n : clock_nodes_()) {
    ASSERT_GT(n->AdvanceClock(ms), 0);
  }
  now_ += ms;
}

v1::Case AssessmentScenario::Act(const Identity& who, const std::string& case_id,
                                 const v1::Command& command, const std::string& what) {
  v1::Case out;
  for (int attempt = 0; attempt < 50; ++attempt) {
    WhistledProcess* node = node_for_(owner_[case_id]);
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::CaseActionRequest req;
    req.set_case_id(case_id);
    *req.mutable_command() = command;
    grpc::Status s = node->cases()->Act(&ctx, req, &out);
    if (s.ok()) {
      owner_[case_id] = out.owner_id();
      return out;
    }
    if (s.error_code() != grpc::UNAVAILABLE) {
      ADD_FAILURE() << what << " on " << case_id << " by " << who.user << ": " << s.error_code()
                    << " " << s.error_message();
      return out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << what << " on " << case_id << ": still UNAVAILABLE";
  return out;
}

void AssessmentScenario::WaitForEntry(const std::string& case_id, v1::TransitionKind kind,
                                      const std::string& what) {
  for (int i = 0; i < 200; ++i) {
    WhistledProcess* node = node_for_(owner_[case_id]);
    grpc::ClientContext ctx;
    Identity{"leader.szs", "leader", "szs", ""}.Apply(ctx);
    v1::GetHistoryRequest req;
    req.set_case_id(case_id);
    v1::GetHistoryResponse resp;
    if (node->cases()->History(&ctx, req, &resp).ok()) {
      for (const auto& e : resp.entries()) {
        if (e.kind() == kind) {
          owner_[case_id] = resp.entries(resp.entries_size() - 1).jurisdiction_id();
          return;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << what << ": no " << v1::TransitionKind_Name(kind) << " on " << case_id;
}

std::string AssessmentScenario::ReportOne(const std::string& grid, const std::string& category,
                                          const Identity& reporter) {
  WhistledProcess* node = node_for_(grid);
  grpc::ClientContext ctx;
  reporter.Apply(ctx);
  v1::ReportCaseRequest req;
  auto* r = req.mutable_report();
  r->set_request_id("r" + std::to_string(case_ids_.size()) + "-" + std::to_string(now_));
  r->set_category(category);
  r->set_severity(v1::SEVERITY_GENERAL);
  r->mutable_place()->set_grid_id(grid);
  r->set_text("assessment scenario case " + std::to_string(case_ids_.size()));
  v1::Case out;
  grpc::Status s = node->cases()->Report(&ctx, req, &out);
  if (!s.ok()) {
    ADD_FAILURE() << "report in " << grid << ": " << s.error_code() << " " << s.error_message();
    return "";
  }
  case_ids_.push_back(out.id());
  owner_[out.id()] = out.owner_id();
  return out.id();
}

void AssessmentScenario::RunCase(int i) {
  const std::string grid = Grid(i), community = Community(i), township = Township(i);
  // Cases 3 and 9 are rated on the resident's behalf: staff took them in (a
  // hotline call), since a grid worker's report is rated by that grid worker.
  const bool desk_intake = i % 10 == 3 || i % 10 == 9;
  const Identity reporter = desk_intake ? Staff(community, "desk") : Worker(grid);
  const std::string id = ReportOne(grid, Category(i), reporter);
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(owner_[id], community) << "a general case is owned by its community";
  auto accept = Cmd([](v1::Command& c) { c.mutable_accept()->set_note("受理"); });
  auto keep = Cmd([](v1::Command& c) { c.mutable_keep()->set_note("自办"); });
  auto resolve = Cmd([](v1::Command& c) { c.mutable_resolve()->set_note("办结"); });
  auto verify = [](bool fixed) {
    return Cmd([fixed](v1::Command& c) {
      c.mutable_verify()->set_fixed(fixed);
      c.mutable_verify()->set_note(fixed ? "已整改" : "未整改");
    });
  };
  auto close = Cmd([](v1::Command& c) { c.mutable_close()->set_note("结案"); });
  auto evaluate = [](int score, bool on_behalf) {
    return Cmd([score, on_behalf](v1::Command& c) {
      c.mutable_evaluate()->set_score(score);
      c.mutable_evaluate()->set_on_behalf(on_behalf);
    });
  };
  auto escalate = Cmd([](v1::Command& c) { c.mutable_escalate()->set_reason("需上级协调"); });
  auto dispatch = [](const std::string& dept) {
    return Cmd([dept](v1::Command& c) { c.mutable_dispatch()->set_department_id(dept); });
  };
  auto report_in = Cmd([](v1::Command& c) { c.mutable_report_in()->set_note("报到"); });
  // Verified by the case's grid worker, closed and rated by people who did not handle it.
  auto finish = [&](const std::string& owner, int score, bool on_behalf, bool rate = true) {
    Advance(20 * kMinute);
    Act(Worker(grid), id, verify(true), "verify");
    Act(Staff(owner, "closer"), id, close, "close");
    if (!rate) return;
    Advance(10 * kMinute);
    Act(on_behalf ? Staff(owner, "rater") : reporter, id, evaluate(score, on_behalf), "evaluate");
  };
  const int score = 1 + (i * 7) % 5;  // 1..5 spread over the cases
  Advance(10 * kMinute);
  switch (i % 10) {
    case 0:  // kept and done in time, rated by the reporter
      Act(Staff(community, "h"), id, accept, "accept");
      Act(Staff(community, "h"), id, keep, "keep");
      Advance(2 * kHour);
      Act(Staff(community, "h"), id, resolve, "resolve");
      finish(community, score, false);
      break;
    case 1: {  // dispatched to a township department that reports in and does its part
      const std::string dept = township + "-judicial_office";
      Act(Staff(community, "h"), id, accept, "accept");
      Act(Staff(community, "h"), id, dispatch(dept), "dispatch");
      Advance(30 * kMinute);
      Act(Desk(dept), id, report_in, "report-in");
      Advance(kHour);
      Act(Desk(dept), id, resolve, "department resolve");
      finish(community, score, false);
      break;
    }
    case 2:  // nobody accepts: the missed limit moves it to the township, which accepts late
      Advance(31 * kMinute);
      WaitForEntry(id, v1::TRANSITION_KIND_OVERDUE, "missed accept");
      ASSERT_EQ(owner_[id], township);
      Act(Staff(township, "h"), id, accept, "late accept");
      Act(Staff(township, "h"), id, keep, "keep");
      Advance(kHour);
      Act(Staff(township, "h"), id, resolve, "resolve");
      finish(township, score, false);
      break;
    case 3: {  // escalated; the township whistles two departments, one never reports in
      Act(Staff(community, "h"), id, accept, "accept");
      Act(Staff(community, "h"), id, escalate, "escalate");
      const std::string police = township + "-police_station";
      const std::string judicial = township + "-judicial_office";
      Act(Staff(township, "h"), id, Cmd([&](v1::Command& c) {
            c.mutable_whistle()->add_department_ids(police);
            c.mutable_whistle()->add_department_ids(judicial);
            c.mutable_whistle()->set_note("吹哨");
          }),
          "whistle");
      Advance(20 * kMinute);
      Act(Desk(police), id, report_in, "report-in");
      Advance(2 * kHour);
      WaitForEntry(id, v1::TRANSITION_KIND_OVERDUE, "no-show");
      Act(Staff(township, "h"), id, resolve, "resolve");
      finish(township, score, true);
      break;
    }
    case 4:  // verification finds it not fixed: reopened, then fixed
      Act(Staff(community, "h"), id, accept, "accept");
      Act(Staff(community, "h"), id, keep, "keep");
      Advance(kHour);
      Act(Staff(community, "h"), id, resolve, "resolve");
      Advance(20 * kMinute);
      Act(Worker(grid), id, verify(false), "verify not fixed");
      Advance(kHour);
      Act(Staff(community, "h"), id, resolve, "resolve again");
      finish(community, score, false);
      break;
    case 5:  // 退回 to the township, which handles it; never rated (the window expires)
      Act(Staff(community, "h"), id,
          Cmd([](v1::Command& c) { c.mutable_return_case()->set_reason("不属本社区"); }), "return");
      Act(Staff(township, "h"), id, accept, "accept");
      Act(Staff(township, "h"), id, keep, "keep");
      Advance(kHour);
      Act(Staff(township, "h"), id, resolve, "resolve");
      finish(township, score, false, /*rate=*/false);
      break;
    case 6: {  // 退单: the first department refuses, the owner re-dispatches
      const std::string wrong = township + "-judicial_office";
      const std::string right = township + "-urban_management";
      Act(Staff(community, "h"), id, accept, "accept");
      Act(Staff(community, "h"), id, dispatch(wrong), "dispatch");
      Act(Desk(wrong), id, Cmd([](v1::Command& c) { c.mutable_refuse()->set_reason("非本部门"); }),
          "refuse");
      Act(Staff(community, "h"), id, dispatch(right), "re-dispatch");
      Advance(15 * kMinute);
      Act(Desk(right), id, report_in, "report-in");
      Advance(kHour);
      Act(Desk(right), id, resolve, "department resolve");
      finish(community, score, false);
      break;
    }
    case 7:  // kept and left alone: the resolve limit passes (resolved at the end, or never)
      Act(Staff(community, "h"), id, accept, "accept");
      Act(Staff(community, "h"), id, keep, "keep");
      left_open_.push_back(id);
      break;
    case 8:  // escalated twice: the county takes it (it left the township)
      Act(Staff(community, "h"), id, escalate, "escalate from reported");
      Act(Staff(township, "h"), id, escalate, "escalate to the county");
      ASSERT_EQ(owner_[id], "dwk");
      Act(Staff("dwk", "h"), id, keep, "keep");
      Advance(kHour);
      Act(Staff("dwk", "h"), id, resolve, "resolve");
      finish("dwk", score, false);
      break;
    case 9:  // rated on the resident's behalf by staff who did not handle it
      Act(Staff(community, "h"), id, accept, "accept");
      Act(Staff(community, "h"), id, keep, "keep");
      Advance(kHour);
      Act(Staff(community, "h"), id, resolve, "resolve");
      finish(community, score, true);
      break;
  }
}

void AssessmentScenario::Run(int cases) {
  for (int i = 0; i < cases; ++i) {
    const int64_t slot_start = kStartMs + i * kSlot;
    if (now_ < slot_start) ASSERT_NO_FATAL_FAILURE(Advance(slot_start - now_));
    ASSERT_NO_FATAL_FAILURE(RunCase(i)) << "case " << i;
  }
  // Four days on, the last case left alone has missed its resolve limit (and
  // moved to its township); two hours more and the township misses its
  // dispatch limit (a supervision notice: the case stays, late).
  ASSERT_NO_FATAL_FAILURE(Advance(4 * kDay));
  Settle(*clock_nodes_()[0]);
  ASSERT_NO_FATAL_FAILURE(Advance(2 * kHour));
  // The cases left alone: the first ones are finally resolved (late) by their
  // owner of the moment; the last stay open and overdue.
  for (size_t k = 0; k + 1 < left_open_.size(); ++k) {
    const std::string& id = left_open_[k];
    WaitForEntry(id, v1::TRANSITION_KIND_OVERDUE, "missed resolve");
    v1::Case c;
    {
      grpc::ClientContext ctx;
      Identity{"leader.szs", "leader", "szs", ""}.Apply(ctx);
      v1::GetCaseRequest get;
      get.set_case_id(id);
      ASSERT_TRUE(node_for_(owner_[id])->cases()->Get(&ctx, get, &c).ok());
    }
    const std::string owner = c.owner_id();
    owner_[id] = owner;
    if (c.state() == v1::CASE_STATE_ACCEPTED) {
      Act(Staff(owner, "late"), id, Cmd([](v1::Command& c) { c.mutable_keep()->set_note("接手"); }),
          "keep after escalation");
    }
    Act(Staff(owner, "late"), id,
        Cmd([](v1::Command& c) { c.mutable_resolve()->set_note("办结"); }), "late resolve");
  }
}

void AssessmentScenario::Settle(WhistledProcess& node) {
  (void)node;
  std::vector<CaseRecord> last;
  for (int round = 0; round < 40; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(round == 0 ? 600 : 300));
    auto now = ReadAll();
    bool same = now.size() == last.size();
    for (size_t k = 0; same && k < now.size(); ++k) {
      same = now[k].history.size() == last[k].history.size();
    }
    if (same && round > 0) return;
    last = std::move(now);
  }
}

std::vector<AssessmentScenario::CaseRecord> AssessmentScenario::ReadAll() {
  std::vector<CaseRecord> out;
  const Identity city{"leader.szs", "leader", "szs", ""};
  for (const auto& id : case_ids_) {
    CaseRecord r;
    for (int attempt = 0; attempt < 3; ++attempt) {
      WhistledProcess* node = node_for_(owner_[id]);
      grpc::ClientContext ctx;
      city.Apply(ctx);
      v1::GetCaseRequest get;
      get.set_case_id(id);
      if (!node->cases()->Get(&ctx, get, &r.c).ok()) continue;
      if (r.c.owner_id() != owner_[id]) {
        owner_[id] = r.c.owner_id();
        continue;  // read it where it is owned now
      }
      grpc::ClientContext hctx;
      city.Apply(hctx);
      v1::GetHistoryRequest req;
      req.set_case_id(id);
      v1::GetHistoryResponse resp;
      grpc::Status s = node->cases()->History(&hctx, req, &resp);
      if (!s.ok()) {
        ADD_FAILURE() << "history of " << id << ": " << s.error_message();
        break;
      }
      r.history.assign(resp.entries().begin(), resp.entries().end());
      break;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::map<std::pair<char, std::string>, HandFigures> AssessmentScenario::CountByHand(
    const std::vector<CaseRecord>& cases, int64_t from_day, int64_t to_day,
    int64_t recurrence_window_ms) {
  std::map<std::pair<char, std::string>, HandFigures> out;
  const core::Topology& tree = Tree();
  auto add_j = [&](const std::string& j, const char* figure, int64_t v, int64_t at, bool gauge) {
    if (!gauge && (Day(at) < from_day || Day(at) > to_day)) return;
    // A jurisdiction's figures are its subtree's: the unit and every ancestor.
    for (std::string id = j; !id.empty();) {
      out[{'j', id}][figure] += v;
      const v1::Jurisdiction* p = tree.Parent(id);
      id = p == nullptr ? "" : p->id();
    }
  };
  auto add_d = [&](const std::string& d, const char* figure, int64_t at) {
    if (Day(at) < from_day || Day(at) > to_day) return;
    out[{'d', d}][figure] += 1;
  };
  // Recurrences: reports of the same grid + category, within the window of the previous one.
  std::map<std::string, int64_t> last_report;
  std::vector<std::pair<int64_t, const CaseRecord*>> reports;
  for (const auto& r : cases) {
    if (!r.history.empty()) reports.emplace_back(r.history[0].at_ms(), &r);
  }
  std::sort(reports.begin(), reports.end());
  std::set<std::string> recurrent;
  for (const auto& [at, r] : reports) {
    std::string key =
        r->c.place().grid_id() + "|" +
        (r->c.original_category().empty() ? r->c.category() : r->c.original_category());
    auto it = last_report.find(key);
    if (it != last_report.end() && at - it->second <= recurrence_window_ms) {
      recurrent.insert(r->c.id());
    }
    last_report[key] = at;
  }

  for (const auto& r : cases) {
    const v1::Case& c = r.c;
    const v1::Jurisdiction* home_t = tree.AncestorAt(c.routed_to_id(), v1::LEVEL_TOWNSHIP);
    const std::string home = home_t == nullptr ? "" : home_t->id();
    // The owner's own accept and resolve limits, by hand from the policy
    // (docs/policy.md: which transitions start which limit). A decision by
    // the owner is in time when made by its own limit; a limit that passed
    // (OVERDUE naming it) is a miss for whoever owned the case then (`from`).
    static const std::shared_ptr<const core::Policy> policy = [] {
      auto p = core::Policy::Build(core::DefaultPolicy());
      return p.ok() ? std::shared_ptr<const core::Policy>(std::move(*p)) : nullptr;
    }();
    std::string category = c.original_category().empty() ? c.category() : c.original_category();
    int64_t accept_end = 0, resolve_end = 0;
    bool owner_step_missed = false;
    bool left = false, overdue_now = false;
    std::map<std::string, bool> no_show_pending;  // dept -> a no-show not yet reported in
    v1::CaseState state = v1::CASE_STATE_UNSPECIFIED;
    std::string owner;
    for (const auto& e : r.history) {
      const int64_t at = e.at_ms();
      const std::string& from = e.from_jurisdiction_id();
      const std::string& to = e.jurisdiction_id();
      if (!home.empty() && !tree.IsWithin(to, home)) left = true;
      const bool from_reported = e.from_state() == v1::CASE_STATE_REPORTED;
      switch (e.kind()) {
        case v1::TRANSITION_KIND_REPORT:
          add_j(to, "received", 1, at, false);
          if (recurrent.count(c.id()) != 0) add_j(to, "recurrences", 1, at, false);
          break;
        case v1::TRANSITION_KIND_VERIFY:
          if (e.to_state() != v1::CASE_STATE_VERIFIED) add_j(to, "reopened", 1, at, false);
          break;
        case v1::TRANSITION_KIND_CLOSE:
          add_j(to, "closed", 1, at, false);
          if (!owner_step_missed) add_j(to, "closed_in_time", 1, at, false);
          if (!home.empty()) {
            add_j(home, "local_closed", 1, at, false);
            if (!left) add_j(home, "kept_local", 1, at, false);
          }
          break;
        case v1::TRANSITION_KIND_EVALUATE:
          if (e.on_behalf()) {
            add_j(to, "evaluated_on_behalf", 1, at, false);
            add_j(to, "on_behalf_score_sum", e.score(), at, false);
          } else {
            add_j(to, "evaluated", 1, at, false);
            add_j(to, "score_sum", e.score(), at, false);
            if (e.score() >= 4) add_j(to, "satisfied", 1, at, false);
          }
          break;
        case v1::TRANSITION_KIND_RETURN:
          add_j(from, "returns", 1, at, false);
          break;
        case v1::TRANSITION_KIND_REFUSE:
          add_j(to, "returns", 1, at, false);
          add_d(e.actor().department_id(), "refusals", at);
          break;
        case v1::TRANSITION_KIND_DISPATCH:
        case v1::TRANSITION_KIND_WHISTLE:
          for (const auto& d : e.department_ids()) add_d(d, "summoned", at);
          break;
        case v1::TRANSITION_KIND_REPORT_IN: {
          const std::string& d = e.actor().department_id();
          add_d(d, "reported_in", at);
          if (!no_show_pending[d]) add_d(d, "reported_in_on_time", at);
          no_show_pending[d] = false;
          break;
        }
        default:
          break;
      }
      if (e.kind() == v1::TRANSITION_KIND_RESOLVE && e.actor().role() == v1::ROLE_DEPARTMENT) {
        add_d(e.actor().department_id(), "parts_done", at);
      }
      if (from_reported && e.to_state() != v1::CASE_STATE_REPORTED &&
          (e.kind() == v1::TRANSITION_KIND_ACCEPT || e.kind() == v1::TRANSITION_KIND_WHISTLE ||
           e.kind() == v1::TRANSITION_KIND_ESCALATE)) {
        add_j(from, "responded", 1, at, false);
        if (accept_end == 0 || at <= accept_end) add_j(from, "responded_in_time", 1, at, false);
      }
      if (Missed(e, "accept")) add_j(from, "responses_missed", 1, at, false);
      if (e.kind() == v1::TRANSITION_KIND_RESOLVE && e.to_state() == v1::CASE_STATE_RESOLVED &&
          e.from_state() != v1::CASE_STATE_RESOLVED) {
        add_j(to, "resolved", 1, at, false);
        if (resolve_end == 0 || at <= resolve_end) add_j(to, "resolved_in_time", 1, at, false);
      }
      if (Missed(e, "resolve")) add_j(from, "resolutions_missed", 1, at, false);
      if ((e.kind() == v1::TRANSITION_KIND_ESCALATE || e.kind() == v1::TRANSITION_KIND_OVERDUE) &&
          from != to && tree.IsWithin(from, to)) {
        add_j(from, "escalations_out", 1, at, false);
      }
      if (Missed(e, "evaluate")) add_j(to, "evaluation_expired", 1, at, false);
      for (const auto& d : NoShowsOf(e)) {
        add_d(d, "no_shows", at);
        add_j(tree.FindDepartment(d)->jurisdiction_id(), "no_shows", 1, at, false);
        no_show_pending[d] = true;
      }
      // Per-case state for the in-time rules and the gauge.
      // The limits this entry starts or ends (docs/policy.md, "Deadlines").
      if (e.kind() == v1::TRANSITION_KIND_TRANSFER && !e.category().empty()) {
        category = e.category();
      }
      const v1::Severity sev = c.severity();
      const bool moved_up = from != to && tree.IsWithin(from, to);
      switch (e.kind()) {
        case v1::TRANSITION_KIND_REPORT:
        case v1::TRANSITION_KIND_RETURN:
          accept_end = policy->AcceptBy(category, sev, at);
          resolve_end = 0;
          break;
        case v1::TRANSITION_KIND_TRANSFER:
          if (from != to) {
            accept_end = policy->AcceptBy(category, sev, at);
            resolve_end = 0;
          }
          break;
        case v1::TRANSITION_KIND_ACCEPT:
        case v1::TRANSITION_KIND_ESCALATE:
          accept_end = 0;
          resolve_end = policy->ResolveBy(category, sev, at);
          break;
        case v1::TRANSITION_KIND_WHISTLE:
          if (from_reported) {
            accept_end = 0;
            resolve_end = policy->ResolveBy(category, sev, at);
          }
          break;
        case v1::TRANSITION_KIND_VERIFY:
          if (e.to_state() != v1::CASE_STATE_VERIFIED) {
            resolve_end = policy->ResolveBy(category, sev, at);
          }
          break;
        case v1::TRANSITION_KIND_RESOLVE:
          if (e.to_state() == v1::CASE_STATE_RESOLVED) resolve_end = 0;
          break;
        case v1::TRANSITION_KIND_REJECT:
          accept_end = resolve_end = 0;
          break;
        case v1::TRANSITION_KIND_OVERDUE:
          // A missed accept: a new accept limit (at the parent, or the same
          // owner under supervision). Moved up accepted, or a missed resolve
          // kept under supervision: a new resolve limit.
          if (Missed(e, "accept")) accept_end = policy->AcceptBy(category, sev, at);
          if ((moved_up && !from_reported) || (!moved_up && Missed(e, "resolve"))) {
            resolve_end = policy->ResolveBy(category, sev, at);
          }
          break;
        default:
          break;
      }
      bool owner_step = Missed(e, "accept") || Missed(e, "dispatch") || Missed(e, "resolve") ||
                        Missed(e, "verify");
      if (owner_step) owner_step_missed = true;
      if (e.kind() == v1::TRANSITION_KIND_OVERDUE) {
        if (from != to) {
          overdue_now = false;
        } else if (owner_step) {
          overdue_now = true;
        }
      } else if (e.kind() != v1::TRANSITION_KIND_SUPERVISE &&
                 (from != to || e.from_state() != e.to_state())) {
        overdue_now = false;
      }
      state = e.to_state();
      owner = to;
    }
    const bool open = state != v1::CASE_STATE_CLOSED && state != v1::CASE_STATE_EVALUATED &&
                      state != v1::CASE_STATE_REJECTED && state != v1::CASE_STATE_UNSPECIFIED;
    if (open && overdue_now) add_j(owner, "overdue_now", 1, 0, true);
  }
  return out;
}

void AssessmentScenario::CompareAll(WhistledProcess& ask, const std::string& label,
                                    const std::string& asked_root) {
  Settle(ask);
  const auto cases = ReadAll();
  auto policy = core::Policy::Build(core::DefaultPolicy());
  ASSERT_TRUE(policy.ok());
  const int64_t window = (*policy)->RecurrenceWindowMs("environment", v1::SEVERITY_GENERAL);
  AssessmentClient client(ask.channel());
  const Identity city{"leader.szs", "leader", "szs", ""};

  struct Period {
    std::string name;
    v1::PeriodSpec spec;
    int64_t from_day, to_day;
  };
  const int64_t first = kStartMs, last = now_;
  const int64_t oct15 = kStartMs + 14 * kDay;
  const int64_t d0 = Day(kStartMs);
  const std::vector<Period> periods = {
      {"whole run", Range(first, last), Day(first), Day(last)},
      {"October", PeriodAt(v1::PERIOD_MONTH, oct15), d0, d0 + 30},
      {"a week", PeriodAt(v1::PERIOD_WEEK, oct15), Day(oct15) - 3, Day(oct15) + 3},  // Mon..Sun
      {"one day", PeriodAt(v1::PERIOD_DAY, kStartMs + 29 * kHour * 3),
       Day(kStartMs + 29 * kHour * 3), Day(kStartMs + 29 * kHour * 3)},
  };
  const std::vector<std::pair<char, std::string>> subjects = {{'j', "dwk-s01"},
                                                              {'j', "dwk-s02"},
                                                              {'j', "dwk-s03"},
                                                              {'j', "dwk"},
                                                              {'j', "szs"},
                                                              {'j', "dwk-s01-c01"},
                                                              {'d', "dwk-s01-judicial_office"},
                                                              {'d', "dwk-s02-police_station"},
                                                              {'d', "dwk-s03-urban_management"}};

  // Every difference between the node's answers and the hand counts, as text
  // ("" = none). Rows from child nodes arrive a moment later: asked again until
  // equal or 20 s have passed.
  int nonzero_checked = 0;
  auto differences = [&]() -> std::string {
    std::ostringstream diff;
    nonzero_checked = 0;
    auto check = [&diff](bool ok, const std::string& what) {
      if (!ok) diff << what << "\n";
    };
    for (const auto& p : periods) {
      auto hand = CountByHand(cases, p.from_day, p.to_day, window);
      for (const auto& [kind, subject] : subjects) {
        v1::AssessResponse got;
        grpc::Status s = client.Assess(city, kind == 'j' ? subject : "", kind == 'd' ? subject : "",
                                       p.spec, &got);
        const std::string& subject_j =
            kind == 'j' ? subject : Tree().FindDepartment(subject)->jurisdiction_id();
        if (!Tree().IsWithin(subject_j, asked_root)) {
          // Above this node's root: refused, naming where to ask.
          check(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
                    s.error_message().find("lies above this node's root \"" + asked_root +
                                           "\": ask the node hosting it") != std::string::npos,
                p.name + ", " + subject + " asked at the node of " + asked_root + ": " +
                    std::to_string(s.error_code()) + " " + s.error_message());
          continue;
        }
        if (!s.ok()) {
          diff << p.name << " " << subject << ": " << s.error_message() << "\n";
          continue;
        }
        const HandFigures& want = hand[{kind, subject}];
        for (const auto& [name, value] : got.counts()) {
          auto it = want.find(name);
          int64_t expected = it == want.end() ? 0 : it->second;
          check(value == expected, p.name + ", " + subject + ", " + name + ": node says " +
                                       std::to_string(value) + ", by hand " +
                                       std::to_string(expected));
          if (expected != 0) ++nonzero_checked;
        }
        for (const auto& [name, value] : want) {
          check(got.counts().count(name) != 0, "no figure " + name + " in the answer");
        }
        // Rates are the same counters divided.
        for (const auto& rate : got.rates()) {
          if (rate.name() == "response_rate") {
            check(rate.numerator() == got.counts().at("responded_in_time") &&
                      rate.denominator() ==
                          got.counts().at("responded") + got.counts().at("responses_missed"),
                  "response_rate is not responded_in_time / (responded + responses_missed)");
          }
          if (rate.name() == "resolution_rate") {
            check(rate.numerator() == got.counts().at("resolved_in_time") &&
                      rate.denominator() ==
                          got.counts().at("resolved") + got.counts().at("resolutions_missed"),
                  "resolution_rate is not resolved_in_time / (resolved + resolutions_missed)");
          }
          if (rate.defined()) {
            check(rate.value() == static_cast<double>(rate.numerator()) /
                                      static_cast<double>(rate.denominator()),
                  rate.name() + ": value is not numerator / denominator");
          }
        }
      }
      // Rank the county's townships: values equal the hand counts, order as documented.
      for (const std::string figure :
           {"received", "escalations_out", "no_shows", "response_rate", "satisfaction_rate"}) {
        v1::RankResponse rank;
        grpc::Status s = client.Rank(city, "dwk", figure, p.spec, &rank);
        if (!s.ok()) {
          diff << "rank " << figure << ": " << s.error_message() << "\n";
          continue;
        }
        check(rank.entries_size() == static_cast<int>(Tree().Children("dwk").size()),
              "rank " + figure + ": not one entry per township");
        // The rank by hand: 1 + the children strictly better (equal values
        // share a rank: 1, 2, 2, 4; a rate by its exact value n/d); 0 when undefined.
        const bool is_rate = figure == "response_rate" || figure == "satisfaction_rate";
        const bool fewer_better = figure == "escalations_out" || figure == "no_shows";
        auto hand_value = [&](const std::string& id) -> std::pair<int64_t, int64_t> {
          const HandFigures& h = hand[{'j', id}];
          auto get = [&h](const std::string& n) {
            auto it = h.find(n);
            return it == h.end() ? int64_t{0} : it->second;
          };
          if (!is_rate) return {get(figure), 1};
          if (figure == "response_rate") {
            return {get("responded_in_time"), get("responded") + get("responses_missed")};
          }
          return {get("satisfied"), get("evaluated")};
        };
        auto hand_rank = [&](const std::string& id) {
          auto [n, d] = hand_value(id);
          if (d == 0) return 0;
          int better = 0;
          for (const v1::Jurisdiction* other : Tree().Children("dwk")) {
            auto [on, od] = hand_value(other->id());
            if (od == 0) continue;
            if (is_rate ? on * d > n * od : (fewer_better ? on < n : on > n)) ++better;
          }
          return better + 1;
        };
        double previous = 0;
        bool first_entry = true, seen_undefined = false;
        for (const auto& e : rank.entries()) {
          check(e.rank() == hand_rank(e.jurisdiction_id()),
                p.name + ", rank " + figure + ", " + e.jurisdiction_id() + ": rank " +
                    std::to_string(e.rank()) + ", by hand " +
                    std::to_string(hand_rank(e.jurisdiction_id())));
          const auto [hand_n, hand_d] = hand_value(e.jurisdiction_id());
          const std::string where = p.name + ", rank " + figure + ", " + e.jurisdiction_id();
          double value = 0;
          if (!is_rate) {
            check(e.count() == hand_n, where + ": count differs from the hand count");
            value = static_cast<double>(e.count());
          } else {
            check(e.rate().numerator() == hand_n && e.rate().denominator() == hand_d,
                  where + ": rate differs from the hand count");
            if (!e.rate().defined()) {
              seen_undefined = true;
              check(e.rank() == 0, where + ": an undefined rate is ranked");
              continue;
            }
            check(!seen_undefined, where + ": a defined rate after an undefined one");
            value = e.rate().value();
          }
          if (!first_entry) {
            check(fewer_better ? value >= previous : value <= previous, where + ": out of order");
          }
          previous = value;
          first_entry = false;
        }
      }
    }
    return diff.str();
  };
  std::string diff;
  for (int attempt = 0; attempt < 100; ++attempt) {
    diff = differences();
    if (diff.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(diff, "") << label;
  EXPECT_GT(nonzero_checked, 100) << "the scenario must exercise the figures";
  // Every figure of the list is exercised somewhere in the whole run.
  auto whole = CountByHand(cases, Day(first), Day(last), window);
  for (const char* name : {"received",
                           "recurrences",
                           "responded",
                           "responded_in_time",
                           "responses_missed",
                           "resolved",
                           "resolved_in_time",
                           "resolutions_missed",
                           "evaluated",
                           "satisfied",
                           "evaluated_on_behalf",
                           "evaluation_expired",
                           "closed",
                           "closed_in_time",
                           "local_closed",
                           "kept_local",
                           "escalations_out",
                           "returns",
                           "reopened",
                           "no_shows",
                           "overdue_now"}) {
    EXPECT_GT((whole[{'j', "dwk"}][name]), 0) << "the scenario never produced " << name;
  }
  EXPECT_LT((whole[{'j', "dwk"}]["kept_local"]), (whole[{'j', "dwk"}]["local_closed"]));
  EXPECT_LT((whole[{'j', "dwk"}]["responded_in_time"]),
            (whole[{'j', "dwk"}]["responded"] + whole[{'j', "dwk"}]["responses_missed"]));
  EXPECT_LT((whole[{'j', "dwk"}]["resolved_in_time"]),
            (whole[{'j', "dwk"}]["resolved"] + whole[{'j', "dwk"}]["resolutions_missed"]));
}

}  // namespace whistle::testing
