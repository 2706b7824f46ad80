// libFuzzer target for the request validation and the case state machine
// (STYLE.md habit 7). The first input byte picks the mode:
//   even: the rest is a stream of length-prefixed protobuf messages
//         (ReportCommand, Command or Caller) parsed with ParseFromArray and
//         fed to CheckCaller/CheckReport/CheckCommand, then what they accept
//         to Report/Apply on a case built along the way;
//   odd:  the rest drives a command sequence: each few bytes pick a clock
//         step, a command kind, a caller from a pool built from the
//         Shizuishan topology and the command's parameters.
// After every call the invariants the actors rely on are checked; a
// violation calls __builtin_trap() so libFuzzer (or the driver) stops there.
#include <google/protobuf/stubs/common.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/case_machine.h"
#include "core/policy.h"
#include "core/topology.h"
#include "tests/core/callers.h"
#include "whistle/v1/case.pb.h"
#include "whistle/v1/common.pb.h"

namespace whistle::core {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int kMaxSteps = 256;  // keeps one input cheap however long it is

// Reports which invariant broke, then stops the process.
[[noreturn]] void Violation(const char* what, const v1::Case& c) {
  std::fprintf(stderr, "case_machine_fuzz: invariant violated: %s\n%s\n", what,
               c.DebugString().c_str());
  __builtin_trap();
}

#define FUZZ_CHECK(cond, c)             \
  do {                                  \
    if (!(cond)) Violation(#cond, (c)); \
  } while (0)

// Everything built once per process: topology, policy and the pools the
// command sequences draw from.
struct Env {
  std::shared_ptr<const Topology> topology;
  std::shared_ptr<const Policy> policy;
  Context ctx;
  std::vector<std::string> grids;
  std::vector<std::string> categories;
  std::vector<std::string> departments;
  std::vector<v1::Caller> callers;

  static v1::Caller MakeCaller(v1::Role role, const std::string& where, const std::string& user) {
    return testing::MakeCaller(user, role, where);
  }

  Env(std::shared_ptr<const Topology> t, std::shared_ptr<const Policy> p)
      : topology(std::move(t)), policy(std::move(p)), ctx{*topology, *policy} {
    // Two grids in different communities of three townships in two counties:
    // enough overlap that random callers often have authority, and enough
    // distance that they often do not.
    for (const char* township : {"dwk-s01", "pl-s02", "hn-s01"}) {
      std::string last_community;
      int taken = 0;
      for (const auto* j : topology->Subtree(township)) {
        if (j->level() != v1::LEVEL_GRID || taken == 2) continue;
        const std::string community = topology->Parent(j->id())->id();
        if (community == last_community) continue;
        last_community = community;
        grids.push_back(j->id());
        ++taken;
      }
    }
    std::vector<std::string> places;  // every grid and ancestor, each once
    auto add_place = [&places](const std::string& id) {
      for (const auto& p : places) {
        if (p == id) return;
      }
      places.push_back(id);
    };
    for (const auto& g : grids) {
      for (const auto* a : topology->Path(g)) add_place(a->id());
      add_place(g);
    }
    add_place("dwk");  // other counties: no authority over most cases
    add_place("hn");
    for (const auto& where : places) {
      const v1::Jurisdiction* j = topology->Find(where);
      if (j->level() == v1::LEVEL_GRID) {
        callers.push_back(MakeCaller(v1::ROLE_GRID_WORKER, where, "gw-" + where));
        continue;
      }
      callers.push_back(MakeCaller(v1::ROLE_STAFF, where, "staff-" + where));
      callers.push_back(MakeCaller(v1::ROLE_LEADER, where, "lead-" + where));
      for (const auto* d : topology->DepartmentsOf(where)) departments.push_back(d->id());
    }
    for (const auto& d : departments) {
      callers.push_back(MakeCaller(v1::ROLE_DEPARTMENT, d, "desk-" + d));
    }
    callers.push_back(SystemCaller());
    callers.push_back(SystemCaller());
    // Malformed callers, which every command must refuse.
    callers.push_back(MakeCaller(v1::ROLE_STAFF, "ghost", "u-ghost"));
    callers.push_back(MakeCaller(v1::ROLE_STAFF, "szs", ""));
    callers.push_back(MakeCaller(v1::ROLE_GRID_WORKER, "dwk-s01", "gw-not-a-grid"));
    callers.push_back(MakeCaller(v1::ROLE_DEPARTMENT, "nope-police_station", "desk-nope"));
    callers.push_back(MakeCaller(v1::ROLE_UNSPECIFIED, "szs", "nobody"));
    departments.push_back("nope-police_station");  // unknown: validation refuses it
    for (const auto& c : policy->config().categories()) categories.push_back(c.id());
  }
};

const Env& GetEnv() {
  static const Env* env = [] {
#if GOOGLE_PROTOBUF_VERSION < 4022000
    // Random bytes make protobuf log every string field that is not UTF-8.
    google::protobuf::SetLogHandler(nullptr);
#endif
    auto topology = Topology::Build(ShizuishanTopology());
    auto policy = Policy::Build(DefaultPolicy());
    if (!topology.ok() || !policy.ok()) {
      std::fprintf(stderr, "case_machine_fuzz: default topology or policy does not build\n");
      __builtin_trap();
    }
    return new Env(*topology, *policy);
  }();
  return *env;
}

// Mirrors NextDeadline in core/case_machine.cc: the earliest positive
// accept/dispatch/resolve/verify/evaluate deadline, or report-in deadline of a summons
// neither reported in, done nor refused (a no-show has its report_in_by cleared).
int64_t ExpectedNextDeadline(const v1::Case& c) {
  int64_t next = 0;
  auto consider = [&next](int64_t d) {
    if (d > 0 && (next == 0 || d < next)) next = d;
  };
  consider(c.deadlines().accept_by_ms());
  consider(c.deadlines().dispatch_by_ms());
  consider(c.deadlines().resolve_by_ms());
  consider(c.deadlines().verify_by_ms());
  consider(c.deadlines().evaluate_by_ms());
  for (const auto& s : c.summons()) {
    if (s.reported_in_at_ms() == 0 && s.done_at_ms() == 0 && s.refused_at_ms() == 0) {
      consider(s.report_in_by_ms());
    }
  }
  return next;
}

// What must hold of any case the machine hands out.
void CheckCase(const v1::Case& c, const Env& env) {
  FUZZ_CHECK(v1::CaseState_IsValid(c.state()), c);
  FUZZ_CHECK(c.state() != v1::CASE_STATE_UNSPECIFIED, c);
  FUZZ_CHECK(env.topology->Find(c.owner_id()) != nullptr, c);
  // A transfer sideways takes a case out of its grid's line; nothing else does.
  FUZZ_CHECK(env.topology->IsWithin(c.place().grid_id(), c.owner_id()) || c.history_length() > 1,
             c);
  FUZZ_CHECK(c.next_deadline_ms() == ExpectedNextDeadline(c), c);
  FUZZ_CHECK(c.state() == v1::CASE_STATE_REPORTED || c.deadlines().accept_by_ms() == 0, c);
  FUZZ_CHECK(c.state() == v1::CASE_STATE_ACCEPTED || c.deadlines().dispatch_by_ms() == 0, c);
  // Settled: only a closed case's evaluation window and a report-in of a
  // department that never came are still timed.
  FUZZ_CHECK(!IsSettled(c.state()) ||
                 c.deadlines().accept_by_ms() + c.deadlines().dispatch_by_ms() +
                         c.deadlines().resolve_by_ms() + c.deadlines().verify_by_ms() ==
                     0,
             c);
  FUZZ_CHECK(c.state() == v1::CASE_STATE_CLOSED || c.deadlines().evaluate_by_ms() == 0, c);
  FUZZ_CHECK(IsOpen(c.state()) != IsSettled(c.state()), c);
  // Storable: what the machine hands out reads back once serialised (a proto3
  // string that is not UTF-8 would serialise and never parse again).
  v1::Case back;
  FUZZ_CHECK(back.ParseFromString(c.SerializeAsString()), c);
}

void CheckEntry(const v1::HistoryEntry& e, const v1::Case& c) {
  v1::HistoryEntry back;
  FUZZ_CHECK(back.ParseFromString(e.SerializeAsString()), c);
}

bool ExpectedFailure(Code code) {
  return code == Code::kInvalidArgument || code == Code::kPermissionDenied ||
         code == Code::kFailedPrecondition;
}

#ifdef WHISTLE_FUZZ_STATS
// Successful transitions by kind, printed at exit: shows how deep the inputs
// get into the loop (build with -DWHISTLE_FUZZ_STATS).
long* Stats() {
  static long counts[v1::TransitionKind_ARRAYSIZE] = {};
  static const bool registered = [] {
    return std::atexit([] {
             for (int k = 0; k < v1::TransitionKind_ARRAYSIZE; ++k) {
               std::fprintf(stderr, "%s=%ld\n", v1::TransitionKind_Name(k).c_str(), counts[k]);
             }
           }) == 0;
  }();
  (void)registered;
  return counts;
}
#endif

// A case under test plus what the fuzzer remembers about it.
struct Tracked {
  v1::Case current;
  bool live = false;
  bool settled = false;  // was closed, evaluated or rejected at some point
};

bool SameStatus(const Status& a, const Status& b) {
  return a.code() == b.code() && a.message() == b.message();
}

// Checks a raw report as the node does at its edge; the one-step form from a
// raw caller must answer exactly as CheckCaller followed by CheckReport.
StatusOr<CheckedReport> CheckRawReport(const v1::ReportCommand& report, const v1::Caller& caller,
                                       const Env& env) {
  StatusOr<CheckedReport> checked = core::CheckReport(caller, report, env.ctx);
  StatusOr<CheckedCaller> who = CheckCaller(caller, env.ctx);
  const Status two_step =
      who.ok() ? core::CheckReport(*who, report, env.ctx).status() : who.status();
  FUZZ_CHECK(SameStatus(checked.status(), two_step), v1::Case());
  FUZZ_CHECK(checked.ok() || ExpectedFailure(checked.status().code()), v1::Case());
  if (checked.ok()) {
    // The route is the policy's, and the report is the one checked.
    StatusOr<std::string> owner = RouteReport(report, env.ctx);
    FUZZ_CHECK(owner.ok() && *owner == checked->owner(), v1::Case());
    // (Fields this build does not know are dropped at the door.)
    v1::ReportCommand known = report;
    known.DiscardUnknownFields();
    FUZZ_CHECK(checked->report().SerializeAsString() == known.SerializeAsString(), v1::Case());
    FUZZ_CHECK(checked->caller().user() == caller.user(), v1::Case());
  }
  return checked;
}

// Reports a checked case and checks the new case.
void ReportAndCheck(const StatusOr<CheckedReport>& checked, const std::string& case_id, int64_t now,
                    const Env& env, Tracked& tracked) {
  if (!checked.ok()) return;
  StatusOr<Transition> t = Report(*checked, case_id, now, env.ctx);
  // Everything that could refuse a report was checked: it is created.
  FUZZ_CHECK(t.ok(), tracked.current);
  const v1::Case& c = t->next;
  FUZZ_CHECK(c.owner_id() == checked->owner(), c);
  FUZZ_CHECK(c.id() == case_id, c);
  FUZZ_CHECK(c.state() == v1::CASE_STATE_REPORTED, c);
  FUZZ_CHECK(c.history_length() == 1, c);
  FUZZ_CHECK(t->entry.seq() == 1, c);
  FUZZ_CHECK(t->entry.kind() == v1::TRANSITION_KIND_REPORT, c);
  FUZZ_CHECK(c.created_at_ms() == now && c.updated_at_ms() == now, c);
  CheckCase(c, env);
  CheckEntry(t->entry, c);
#ifdef WHISTLE_FUZZ_STATS
  Stats()[v1::TRANSITION_KIND_REPORT]++;
#endif
  tracked.current = c;
  tracked.live = true;
  tracked.settled = false;
}

// Applies a raw `command` to the tracked case as the node does (the timer's
// overdue on the system caller's own path; anything else through
// CheckCommand first) and checks the transition. Returns whether it applied.
bool ApplyAndCheck(const v1::Command& command, const v1::Caller& caller, int64_t now,
                   const Env& env, Tracked& tracked) {
  const v1::Case& current = tracked.current;
  const std::string before = current.SerializeAsString();
  StatusOr<Transition> t = Status::Internal("unset");
  if (IsSystemCaller(caller) && command.has_overdue()) {
    t = ApplyOverdue(current, command.overdue(), now, env.ctx);
  } else {
    StatusOr<CheckedCommand> checked = CheckCommand(caller, command, env.ctx);
    StatusOr<CheckedCaller> who = CheckCaller(caller, env.ctx);
    const Status two_step = who.ok() ? CheckCommand(*who, command, env.ctx).status() : who.status();
    FUZZ_CHECK(SameStatus(checked.status(), two_step), current);
    // Refused at the edge: only ever for a malformed caller or command.
    if (!checked.ok()) {
      FUZZ_CHECK(checked.status().code() == Code::kInvalidArgument, current);
      return false;
    }
    t = Apply(current, *checked, now, env.ctx);
  }
  // Apply takes the case by const reference: success or not, it is untouched.
  FUZZ_CHECK(current.SerializeAsString() == before, current);
  if (!t.ok()) {
    FUZZ_CHECK(ExpectedFailure(t.status().code()), current);
    return false;
  }
  const v1::Case& next = t->next;
  const v1::HistoryEntry& entry = t->entry;
  FUZZ_CHECK(next.history_length() == current.history_length() + 1, next);
  FUZZ_CHECK(entry.seq() == next.history_length(), next);
  FUZZ_CHECK(entry.case_id() == current.id() && next.id() == current.id(), next);
  FUZZ_CHECK(entry.from_state() == current.state(), next);
  FUZZ_CHECK(entry.to_state() == next.state(), next);
  FUZZ_CHECK(entry.from_jurisdiction_id() == current.owner_id(), next);
  FUZZ_CHECK(entry.jurisdiction_id() == next.owner_id(), next);
  FUZZ_CHECK(entry.at_ms() == now && next.updated_at_ms() == now, next);
  FUZZ_CHECK(next.created_at_ms() == current.created_at_ms(), next);
  FUZZ_CHECK(next.reporter() == current.reporter(), next);
  FUZZ_CHECK(next.place().grid_id() == current.place().grid_id(), next);
  CheckCase(next, env);
  CheckEntry(entry, next);
  // Settled is for good: only CLOSED -> EVALUATED may follow, or the node's
  // own OVERDUE (the evaluation window closing, a late no-show), never reopening.
  if (tracked.settled) {
    FUZZ_CHECK(!IsOpen(next.state()), next);
    FUZZ_CHECK(
        current.state() == v1::CASE_STATE_CLOSED || entry.kind() == v1::TRANSITION_KIND_OVERDUE,
        next);
    FUZZ_CHECK(
        next.state() == v1::CASE_STATE_EVALUATED || entry.kind() == v1::TRANSITION_KIND_OVERDUE,
        next);
    FUZZ_CHECK(next.state() == v1::CASE_STATE_EVALUATED || next.state() == current.state(), next);
    FUZZ_CHECK(!current.evaluation_expired() || next.state() != v1::CASE_STATE_EVALUATED, next);
  }
#ifdef WHISTLE_FUZZ_STATS
  Stats()[entry.kind()]++;
#endif
  tracked.current = next;
  if (IsSettled(next.state())) tracked.settled = true;
  return true;
}

// ---- Mode (a): raw protobuf messages ----

void FuzzMessages(const uint8_t* data, size_t size, const Env& env) {
  Tracked tracked;
  v1::Caller caller = env.callers.front();
  int64_t now = kT0;
  int next_id = 1;
  size_t pos = 0;
  // Each message: one tag byte (low two bits: which message; the rest: how
  // far the clock moves), two length bytes, then the message bytes.
  while (pos + 3 <= size) {
    const uint8_t tag = data[pos];
    size_t len = static_cast<size_t>(data[pos + 1]) | static_cast<size_t>(data[pos + 2]) << 8;
    pos += 3;
    if (len > size - pos) len = size - pos;
    const uint8_t* bytes = data + pos;
    pos += len;
    now += static_cast<int64_t>(tag >> 2) * 60'000;
    switch (tag & 3) {
      case 0: {
        v1::ReportCommand report;
        if (!report.ParseFromArray(bytes, static_cast<int>(len))) break;
        const std::string case_id = "szs-" + std::to_string(next_id++);
        ReportAndCheck(CheckRawReport(report, caller, env), case_id, now, env, tracked);
        break;
      }
      case 1:
      case 3: {
        v1::Command command;
        if (!command.ParseFromArray(bytes, static_cast<int>(len))) break;
        const bool valid = CheckCommand(caller, command, env.ctx).ok();
        if (!tracked.live) break;
        const int64_t before = tracked.current.history_length();
        const bool applied = ApplyAndCheck(command, caller, now, env, tracked);
        // Only the system caller's overdue applies without passing the check.
        FUZZ_CHECK(valid || !applied || (IsSystemCaller(caller) && command.has_overdue()),
                   tracked.current);
        FUZZ_CHECK(applied || tracked.current.history_length() == before, tracked.current);
        break;
      }
      case 2: {
        v1::Caller parsed;
        if (!parsed.ParseFromArray(bytes, static_cast<int>(len))) break;
        const bool valid = CheckCaller(parsed, env.ctx).ok();
        // Invalid callers are kept too: CheckReport and CheckCommand must
        // refuse them (the system caller's overdue takes its own path).
        caller = parsed;
        if (!valid) {
          v1::Command probe;
          probe.mutable_accept();
          FUZZ_CHECK(!CheckCommand(caller, probe, env.ctx).ok(), tracked.current);
        }
        if (!valid && tracked.live) {
          v1::Command probe;
          probe.mutable_accept();
          const int64_t before = tracked.current.history_length();
          FUZZ_CHECK(!ApplyAndCheck(probe, caller, now, env, tracked), tracked.current);
          FUZZ_CHECK(tracked.current.history_length() == before, tracked.current);
        }
        break;
      }
    }
  }
}

// ---- Mode (b): command sequences ----

// Hands out input bytes; zeros once they run out.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  size_t Index(size_t n) { return n == 0 ? 0 : Byte() % n; }
  template <class T>
  const T& Pick(const std::vector<T>& v) {
    return v[Index(v.size())];
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

std::string Text(ByteReader& in) {
  switch (in.Byte() % 8) {
    case 0:
      return "";
    case 1:
      return std::string(4001, 'x');  // one byte over every note limit
    case 2:
      return std::string(4000, 'y');
    case 3:
      return "M\xfcller";  // Latin-1, not UTF-8: must be refused at the door
    case 4:
      return "a\x01"
             "b";  // a control character
    default:
      return "because";
  }
}

// Reports a new case: mostly well formed, sometimes with a field the
// validation must refuse.
bool NewCase(ByteReader& in, int64_t now, int& next_id, const Env& env, Tracked& tracked) {
  v1::ReportCommand report;
  report.set_request_id("req-" + std::to_string(next_id));
  report.set_category(in.Pick(env.categories));
  report.set_severity(static_cast<v1::Severity>(1 + in.Byte() % 4));
  report.mutable_place()->set_grid_id(in.Pick(env.grids));
  report.set_text("fuzzed case");
  const uint8_t shape = in.Byte();
  if (shape & 0x80) {
    switch (shape % 8) {
      case 0:
        report.clear_request_id();
        break;
      case 1:
        report.set_severity(static_cast<v1::Severity>(static_cast<int8_t>(in.Byte())));
        break;
      case 2:
        report.mutable_place()->set_latitude(static_cast<int8_t>(in.Byte()));
        report.mutable_place()->set_longitude(static_cast<int8_t>(in.Byte()) * 2);
        break;
      case 3:
        report.mutable_place()->set_latitude(std::numeric_limits<double>::quiet_NaN());
        break;
      case 4:
        report.set_text(in.Byte() % 2 ? "" : std::string(4001, 't'));
        break;
      case 5:
        report.mutable_place()->set_grid_id(in.Pick(env.callers).jurisdiction_id());
        break;
      default:
        for (int i = in.Byte() % 22; i > 0; --i) {
          v1::Attachment* a = report.add_attachments();
          a->set_uri(in.Byte() % 16 == 0 ? "" : "s3://bucket/photo.jpg");
          a->set_media_type("image/jpeg");
        }
        break;
    }
  }
  // Well formed = accepted from the city's staff, who may report anywhere.
  const v1::Caller intake =
      Env::MakeCaller(v1::ROLE_STAFF, env.topology->root().id(), "staff-intake");
  const bool valid = CheckRawReport(report, intake, env).ok();
  // Mostly the grid's own worker; sometimes anyone from the pool.
  const uint8_t who = in.Byte();
  const bool own_worker = who % 4 != 0;
  v1::Caller reporter = own_worker ? Env::MakeCaller(v1::ROLE_GRID_WORKER, report.place().grid_id(),
                                                     "gw-" + report.place().grid_id())
                                   : env.callers[(who / 4) % env.callers.size()];
  const std::string case_id = "szs-" + std::to_string(next_id++);
  StatusOr<CheckedReport> checked = CheckRawReport(report, reporter, env);
  FUZZ_CHECK(valid || !checked.ok(), tracked.current);
  // The grid's own worker may always report a well-formed case there.
  FUZZ_CHECK(!own_worker || !valid || checked.ok(), tracked.current);
  ReportAndCheck(checked, case_id, now, env, tracked);
  return checked.ok();
}

// Command kinds (numbered as in MakeCommand) that fit `state`, so that
// sequences get deep into the loop; half the time the fuzzer uses these.
int LikelyKind(v1::CaseState state, uint8_t b) {
  static const std::vector<int> kReported = {0, 0, 3, 4, 10, 11, 13, 15};
  static const std::vector<int> kAccepted = {1, 2, 3, 4, 11, 12};
  static const std::vector<int> kDispatched = {5, 5, 6, 3, 13, 16, 1};
  static const std::vector<int> kInProgress = {5, 6, 6, 1, 4, 13};
  static const std::vector<int> kResolved = {7, 7, 13};
  switch (state) {
    case v1::CASE_STATE_REPORTED:
      return kReported[b % kReported.size()];
    case v1::CASE_STATE_ACCEPTED:
      return kAccepted[b % kAccepted.size()];
    case v1::CASE_STATE_DISPATCHED:
      return kDispatched[b % kDispatched.size()];
    case v1::CASE_STATE_IN_PROGRESS:
      return kInProgress[b % kInProgress.size()];
    case v1::CASE_STATE_RESOLVED:
      return kResolved[b % kResolved.size()];
    case v1::CASE_STATE_VERIFIED:
      return 8;
    case v1::CASE_STATE_CLOSED:
      return 9;
    default:
      return b % 18;
  }
}

v1::Command MakeCommand(ByteReader& in, const Env& env, const v1::Case& c) {
  v1::Command cmd;
  const uint8_t kind = in.Byte();
  switch (kind & 0x80 ? LikelyKind(c.state(), kind & 0x7f) : kind % 18) {
    case 0:
      cmd.mutable_accept()->set_note(Text(in));
      break;
    case 1: {
      // A department already summoned, or any from the pool.
      const uint8_t b = in.Byte();
      const std::string& dept = (b & 1) && c.summons_size() > 0
                                    ? c.summons((b >> 1) % c.summons_size()).department_id()
                                    : env.departments[(b >> 1) % env.departments.size()];
      cmd.mutable_dispatch()->set_department_id(dept);
      cmd.mutable_dispatch()->set_note(Text(in));
      break;
    }
    case 2:
      cmd.mutable_keep()->set_note(Text(in));
      break;
    case 3:
      cmd.mutable_escalate()->set_reason(Text(in));
      break;
    case 4: {
      const uint8_t b = in.Byte();
      const int n = b == 255 ? 65 : b % 4;  // 0 and 65 are out of bounds
      for (int i = 0; i < n; ++i) {
        cmd.mutable_whistle()->add_department_ids(in.Pick(env.departments));
      }
      if (n == 0) cmd.mutable_whistle();
      cmd.mutable_whistle()->set_note(Text(in));
      break;
    }
    case 5:
      cmd.mutable_report_in()->set_note(Text(in));
      break;
    case 6:
      cmd.mutable_resolve()->set_note(Text(in));
      break;
    case 7:
      cmd.mutable_verify()->set_fixed(in.Byte() % 4 != 0);
      break;
    case 8:
      cmd.mutable_close()->set_note(Text(in));
      break;
    case 9:
      cmd.mutable_evaluate()->set_score(static_cast<int8_t>(in.Byte()) % 8);
      cmd.mutable_evaluate()->set_comment(Text(in));
      cmd.mutable_evaluate()->set_on_behalf(in.Byte() % 2 == 0);
      break;
    case 10:
      cmd.mutable_return_case()->set_reason(Text(in));
      break;
    case 11:
      cmd.mutable_reject()->set_reason(Text(in));
      break;
    case 12:
      cmd.mutable_supervise()->set_note(Text(in));
      break;
    case 13:
      cmd.mutable_overdue()->set_deadline(in.Byte() % 8 == 0 ? std::string(65, 'd') : "tick");
      break;
    case 14:
      cmd.mutable_report()->set_text("not here");
      break;
    case 15: {
      const uint8_t b = in.Byte();
      auto* t = cmd.mutable_transfer();
      if (b & 1) t->set_to_jurisdiction_id(in.Pick(env.callers).jurisdiction_id());
      if (b & 2) t->set_category(b & 4 ? "dispute.family" : "environment");
      t->set_reason(Text(in));
      break;
    }
    case 16:
      cmd.mutable_refuse()->set_reason(Text(in));
      break;
    default:
      break;  // no action set
  }
  return cmd;
}

v1::Caller MakeCallerFor(ByteReader& in, const Env& env, const v1::Case& c) {
  const uint8_t b = in.Byte();
  // A summoned department (so report-in and resolve get somewhere), someone
  // with authority or the case's grid worker, now and then; otherwise anyone
  // from the pool.
  if (b % 8 == 0 && c.summons_size() > 0) {
    const std::string& dept = c.summons(in.Index(c.summons_size())).department_id();
    return Env::MakeCaller(v1::ROLE_DEPARTMENT, dept, "desk-" + dept);
  }
  if (b % 8 == 1 || b % 8 == 2) {
    // Staff or a leader of the owner or an ancestor: usually allowed.
    std::vector<const v1::Jurisdiction*> path = env.topology->Path(c.owner_id());
    path.push_back(env.topology->Find(c.owner_id()));
    const std::string& where = path[(b / 8) % path.size()]->id();
    return Env::MakeCaller(b % 8 == 1 ? v1::ROLE_STAFF : v1::ROLE_LEADER, where, "staff-" + where);
  }
  if (b % 8 == 3) {
    return Env::MakeCaller(v1::ROLE_GRID_WORKER, c.place().grid_id(), c.reporter());
  }
  return in.Pick(env.callers);
}

// How far the clock moves before a command; deadlines and deadline + 1 are
// hit on purpose since `now == deadline` is still in time.
int64_t Advance(ByteReader& in, int64_t now, const v1::Case& c) {
  const uint8_t b = in.Byte();
  switch (b % 8) {
    case 0:
    case 1:
      return now;
    case 2:
      return now + 1;
    case 3:
      return now + static_cast<int64_t>(in.Byte()) * 60'000;
    case 4:
      return now + static_cast<int64_t>(in.Byte()) * 3'600'000;
    case 5:
    case 6:
      if (c.next_deadline_ms() > now) return c.next_deadline_ms() + (b % 8 == 6 ? 1 : 0);
      return now + 1;
    default:
      return now + static_cast<int64_t>(in.Byte()) * 24 * 3'600'000;
  }
}

void FuzzSequence(const uint8_t* data, size_t size, const Env& env) {
  ByteReader in(data, size);
  Tracked tracked;
  int64_t now = kT0 + static_cast<int64_t>(in.Byte()) * 1'000;
  int next_id = 1;
  for (int step = 0; step < kMaxSteps && !in.empty(); ++step) {
    if (!tracked.live || tracked.current.state() == v1::CASE_STATE_EVALUATED ||
        tracked.current.state() == v1::CASE_STATE_REJECTED) {
      NewCase(in, now, next_id, env, tracked);
      continue;
    }
    now = Advance(in, now, tracked.current);
    v1::Command command = MakeCommand(in, env, tracked.current);
    v1::Caller caller = MakeCallerFor(in, env, tracked.current);
    ApplyAndCheck(command, caller, now, env, tracked);
  }
}

}  // namespace
}  // namespace whistle::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const whistle::core::Env& env = whistle::core::GetEnv();
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    whistle::core::FuzzMessages(data + 1, size - 1, env);
  } else {
    whistle::core::FuzzSequence(data + 1, size - 1, env);
  }
  return 0;
}
