// Federation under faults: real whistled processes linked over gRPC, with a node SIGKILLed
// mid-flow and restarted, a parent down for seconds, a node link cut (paused) or reset
// through a TcpProxy, and a chaos run over five nodes bounded by wall time.
//
// Callers talk to the node hosting their own jurisdiction and record every transition
// they saw acknowledged (case id, the answer's history_length, kind, and a note unique to
// the attempt). When a call fails in a way that leaves its effect unknown (UNAVAILABLE,
// DEADLINE_EXCEEDED, ...), a reporter retries with the same request id and any other
// caller re-reads the case from its owner and goes on from the state it finds. At the end
// (every node up, links connected, outboxes drained) the whole federation is read back:
// one owner per case, gapless histories, every acknowledged transition exactly once,
// copies equal to the owner's history, no duplicate case, summons or report-in, and the
// per-state counts of all nodes adding up to the cases found.
//
// Knobs (environment): WHISTLE_CHAOS_SECONDS (default 75), WHISTLE_STORM_SECONDS (10),
// WHISTLE_FAULT_VERBOSE=1 prints every owner's history at the end, marking entries no
// caller saw acknowledged with (!).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "core/topology.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/scenario.h"
#include "whistle/v1/link.grpc.pb.h"

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Code = grpc::StatusCode;

// Generous bounds: the CI runs these again under ASan, about three times slower.
constexpr auto kConverge = 120s;

// ---- Small helpers (as in federation_test.cc) ----

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

v1::Command Cmd(const std::function<void(v1::Command&)>& fill) {
  v1::Command c;
  fill(c);
  return c;
}

// A leader at the root may read any case on any node.
const Identity kCityLeader{"sun.city", "leader", "szs", ""};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

const core::Topology& Tree() {
  static const std::shared_ptr<const core::Topology> tree = [] {
    auto built = core::Topology::Build(core::ShizuishanTopology());
    if (!built.ok()) std::abort();
    return *built;
  }();
  return *tree;
}

v1::Level LevelOf(const std::string& id) {
  const v1::Jurisdiction* j = Tree().Find(id);
  return j == nullptr ? v1::LEVEL_UNSPECIFIED : j->level();
}

// ---- Links and metrics ----

// A fresh channel may fail to connect now and then on this loaded 2-core machine ("failed
// to connect to all addresses"): reads a test relies on are retried a few times.
bool Transient(const grpc::Status& s) {
  return s.error_code() == Code::UNAVAILABLE || s.error_code() == Code::DEADLINE_EXCEEDED;
}

bool LinksOf(WhistledProcess& node, v1::GetLinksResponse* out) {
  auto stub = v1::NodeService::NewStub(node.channel());
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    grpc::Status s = stub->GetLinks(&ctx, v1::GetLinksRequest(), out);
    if (s.ok()) return true;
    if (!Transient(s) || attempt == 3) return false;
    std::this_thread::sleep_for(100ms);
  }
}

// The link to `peer` ("parent" or a child's root); empty when absent or not answered.
v1::LinkStatus LinkOf(WhistledProcess& node, const std::string& peer) {
  v1::GetLinksResponse links;
  if (LinksOf(node, &links)) {
    for (const auto& l : links.links()) {
      if (l.peer() == peer) return l;
    }
  }
  return {};
}

bool AllLinksUp(LocalFederation& fed) {
  for (const auto& n : fed.plan()) {
    v1::GetLinksResponse links;
    if (!LinksOf(fed.node(n.name), &links)) return false;
    for (const auto& l : links.links()) {
      if (!l.connected()) return false;
    }
  }
  return true;
}

// Every node answers, every link is connected and every outbox is empty. `why` says what
// is not, when not.
bool Quiet(LocalFederation& fed, std::string* why) {
  for (const auto& n : fed.plan()) {
    WhistledProcess& node = fed.node(n.name);
    if (!node.running()) {
      *why = n.name + " is not running";
      return false;
    }
    v1::GetLinksResponse links;
    if (!LinksOf(node, &links)) {
      *why = n.name + " does not answer GetLinks";
      return false;
    }
    for (const auto& l : links.links()) {
      if (!l.connected() || l.outbox_depth() != 0) {
        *why = n.name + " link " + l.ShortDebugString();
        return false;
      }
    }
  }
  return true;
}

// Quiet three polls in a row, 600 ms apart (outbox depth is refreshed once a second).
bool WaitQuiet(LocalFederation& fed, std::chrono::milliseconds timeout, std::string* why) {
  auto until = Clock::now() + timeout;
  int clear = 0;
  while (Clock::now() < until) {
    if (Quiet(fed, why)) {
      if (++clear >= 3) return true;
    } else {
      clear = 0;
    }
    std::this_thread::sleep_for(600ms);
  }
  return false;
}

// The body of GET `path` from `address` (host:port); "" on any error.
std::string HttpGet(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || colon == std::string::npos) return "";
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[8192];
      for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) {
        response.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of the first sample of `name` whose labels contain `label` (`peer="parent"`);
// -1 when there is none.
double MetricSample(const std::string& page, const std::string& name, const std::string& label) {
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) != 0 || line.find(label) == std::string::npos) continue;
    auto space = line.rfind(' ');
    if (space != std::string::npos) return std::atof(line.c_str() + space + 1);
  }
  return -1;
}

// ---- Who acts ----

Identity Staff(const std::string& jurisdiction) {
  return {"staff." + jurisdiction, "staff", jurisdiction, ""};
}
Identity Desk(const std::string& department) {
  return {"desk." + department, "department", "", department};
}
std::string DeskHome(const std::string& department) {
  const v1::Department* d = Tree().FindDepartment(department);
  return d == nullptr ? "" : d->jurisdiction_id();
}

// Departments a jurisdiction's staff summon: township offices, or bureaus of a county
// or of the city (config/shizuishan.json).
std::vector<std::string> DesksAt(const std::string& jurisdiction) {
  switch (LevelOf(jurisdiction)) {
    case v1::LEVEL_TOWNSHIP:
      return {jurisdiction + "-police_station", jurisdiction + "-judicial_office"};
    case v1::LEVEL_COUNTY:
    case v1::LEVEL_CITY:
      return {jurisdiction + "-public_security", jurisdiction + "-justice"};
    default:
      return {};
  }
}

// Where one caller's cases start, and how high they may go.
struct Lane {
  std::string grid, community, township, county, city;
  std::string top;  // highest owner a case may be escalated or returned to
  Identity worker;  // the grid worker: reports, verifies, rates
};

// The first grid of the `community_index`-th community of `township`; the grid worker
// is "grid.<tag>" (each caller its own reporter, so request ids never clash).
Lane MakeLane(const std::string& township, size_t community_index, const std::string& top,
              const std::string& tag) {
  Lane lane;
  std::vector<const v1::Jurisdiction*> communities;
  for (const auto* j : Tree().Children(township)) {
    if (j->level() == v1::LEVEL_COMMUNITY) communities.push_back(j);
  }
  const v1::Jurisdiction* community = communities.at(community_index % communities.size());
  for (const auto* j : Tree().Children(community->id())) {
    if (j->level() == v1::LEVEL_GRID) {
      lane.grid = j->id();
      break;
    }
  }
  lane.community = community->id();
  lane.township = township;
  lane.county = Tree().AncestorAt(township, v1::LEVEL_COUNTY)->id();
  lane.city = Tree().root().id();
  lane.top = top;
  lane.worker = {"grid." + tag, "grid_worker", lane.grid, ""};
  return lane;
}

// One step: who, on which node (the one hosting `home`, the caller's own jurisdiction),
// and what.
struct Move {
  Identity who;
  std::string home;
  v1::Command command;
};

Move StaffDoes(const std::string& jurisdiction, const std::function<void(v1::Command&)>& fill) {
  return {Staff(jurisdiction), jurisdiction, Cmd(fill)};
}
Move DeskDoes(const std::string& department, const std::function<void(v1::Command&)>& fill) {
  return {Desk(department), DeskHome(department), Cmd(fill)};
}
Move WorkerDoes(const Lane& lane, const std::function<void(v1::Command&)>& fill) {
  return {lane.worker, lane.grid, Cmd(fill)};
}

v1::TransitionKind KindOf(const v1::Command& c) {
  switch (c.kind_case()) {
    case v1::Command::kAccept:
      return v1::TRANSITION_KIND_ACCEPT;
    case v1::Command::kDispatch:
      return v1::TRANSITION_KIND_DISPATCH;
    case v1::Command::kKeep:
      return v1::TRANSITION_KIND_KEEP;
    case v1::Command::kEscalate:
      return v1::TRANSITION_KIND_ESCALATE;
    case v1::Command::kWhistle:
      return v1::TRANSITION_KIND_WHISTLE;
    case v1::Command::kReportIn:
      return v1::TRANSITION_KIND_REPORT_IN;
    case v1::Command::kResolve:
      return v1::TRANSITION_KIND_RESOLVE;
    case v1::Command::kVerify:
      return v1::TRANSITION_KIND_VERIFY;
    case v1::Command::kClose:
      return v1::TRANSITION_KIND_CLOSE;
    case v1::Command::kEvaluate:
      return v1::TRANSITION_KIND_EVALUATE;
    case v1::Command::kReturnCase:
      return v1::TRANSITION_KIND_RETURN;
    case v1::Command::kReject:
      return v1::TRANSITION_KIND_REJECT;
    case v1::Command::kSupervise:
      return v1::TRANSITION_KIND_SUPERVISE;
    default:
      return v1::TRANSITION_KIND_UNSPECIFIED;
  }
}

// The command's free text carries the attempt's unique note into the history entry.
void SetNote(v1::Command& c, const std::string& note) {
  switch (c.kind_case()) {
    case v1::Command::kAccept:
      return c.mutable_accept()->set_note(note);
    case v1::Command::kDispatch:
      return c.mutable_dispatch()->set_note(note);
    case v1::Command::kKeep:
      return c.mutable_keep()->set_note(note);
    case v1::Command::kEscalate:
      return c.mutable_escalate()->set_reason(note);
    case v1::Command::kWhistle:
      return c.mutable_whistle()->set_note(note);
    case v1::Command::kReportIn:
      return c.mutable_report_in()->set_note(note);
    case v1::Command::kResolve:
      return c.mutable_resolve()->set_note(note);
    case v1::Command::kVerify:
      return c.mutable_verify()->set_note(note);
    case v1::Command::kClose:
      return c.mutable_close()->set_note(note);
    case v1::Command::kEvaluate:
      return c.mutable_evaluate()->set_comment(note);
    case v1::Command::kReturnCase:
      return c.mutable_return_case()->set_reason(note);
    case v1::Command::kReject:
      return c.mutable_reject()->set_reason(note);
    case v1::Command::kSupervise:
      return c.mutable_supervise()->set_note(note);
    default:
      return;
  }
}

constexpr char kNotePrefix[] = "n/";

// ---- What callers saw acknowledged ----

struct Acked {
  std::string case_id;
  int64_t seq = 0;
  v1::TransitionKind kind = v1::TRANSITION_KIND_UNSPECIFIED;
  std::string note;  // "" for reports
};

class Ledger {
 public:
  void Reported(const Identity& who, const v1::ReportCommand& report, const v1::Case& c) {
    std::lock_guard lock(mu_);
    const std::string key = who.user + "/" + report.request_id();
    auto [it, fresh] = reports_.try_emplace(key, c.id());
    if (!fresh && it->second != c.id()) {
      ADD_FAILURE() << "report " << key << " answered with case " << c.id() << " after "
                    << it->second;
    }
    if (fresh) acked_.push_back({c.id(), 1, v1::TRANSITION_KIND_REPORT, ""});
    pending_.erase(key);
  }

  void Stepped(const v1::Case& answer, const v1::Command& command, const std::string& note,
               int64_t known_length) {
    std::lock_guard lock(mu_);
    if (answer.history_length() <= known_length) {
      ADD_FAILURE() << "case " << answer.id() << ": " << command.ShortDebugString()
                    << " answered with history_length " << answer.history_length()
                    << ", not past the " << known_length << " known before";
    }
    acked_.push_back({answer.id(), answer.history_length(), KindOf(command), note});
  }

  void Failed(const grpc::Status& s) {
    std::lock_guard lock(mu_);
    ++failures_[s.error_code()];
  }

  void Pending(const Identity& who, const v1::ReportCommand& report) {
    std::lock_guard lock(mu_);
    pending_[who.user + "/" + report.request_id()] = {who, report};
  }

  std::vector<std::pair<Identity, v1::ReportCommand>> PendingReports() const {
    std::lock_guard lock(mu_);
    std::vector<std::pair<Identity, v1::ReportCommand>> out;
    for (const auto& [key, p] : pending_) out.push_back(p);
    return out;
  }

  size_t acked() const {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  std::vector<Acked> Steps() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::map<std::string, std::string> Reports() const {
    std::lock_guard lock(mu_);
    return reports_;
  }
  int failures(Code code) const {
    std::lock_guard lock(mu_);
    auto it = failures_.find(code);
    return it == failures_.end() ? 0 : it->second;
  }
  std::string Summary() const {
    std::lock_guard lock(mu_);
    std::ostringstream out;
    out << reports_.size() << " cases, " << acked_.size()
        << " acknowledged transitions; failed calls:";
    for (const auto& [code, n] : failures_) out << " code " << code << " x" << n;
    return out.str();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Acked> acked_;
  std::map<std::string, std::string> reports_;  // reporter/request id -> case id
  std::map<std::string, std::pair<Identity, v1::ReportCommand>> pending_;
  std::map<Code, int> failures_;
};

// Refusals for a state or an owner the caller had just read from the owner: with no call
// left hanging (a killed node answers nothing later; a link that broke failed its forwards
// and the caller re-read after that), there are none unless a command took effect twice
// or a read came from a stale owner.
void ExpectNoConflicts(const Ledger& ledger) {
  EXPECT_EQ(ledger.failures(Code::FAILED_PRECONDITION), 0) << ledger.Summary();
  EXPECT_EQ(ledger.failures(Code::PERMISSION_DENIED), 0) << ledger.Summary();
}

// One stub per node, kept (a node restarts on the same port). One per thread.
class Stubs {
 public:
  explicit Stubs(LocalFederation& fed) : fed_(fed) {}
  v1::CaseService::Stub& For(const std::string& node_name) {
    auto& stub = stubs_[node_name];
    if (!stub) stub = v1::CaseService::NewStub(fed_.node(node_name).channel());
    return *stub;
  }
  v1::CaseService::Stub& Hosting(const std::string& jurisdiction) {
    return For(fed_.NodeFor(jurisdiction));
  }

 private:
  LocalFederation& fed_;
  std::map<std::string, std::unique_ptr<v1::CaseService::Stub>> stubs_;
};

// The effect of the call is unknown or it may work later: re-read and go on.
bool Retryable(Code code) {
  switch (code) {
    case Code::UNAVAILABLE:         // node down, link down, transfer not there yet
    case Code::DEADLINE_EXCEEDED:   // no answer in time
    case Code::NOT_FOUND:           // the caller's node has no copy yet
    case Code::RESOURCE_EXHAUSTED:  // busy
    case Code::CANCELLED:
    case Code::ABORTED:
    case Code::FAILED_PRECONDITION:  // our view was older than the owner's (an unknown outcome)
    case Code::PERMISSION_DENIED:    // same: an escalation we did not see answered went through
      return true;
    default:
      return false;
  }
}

using Policy = std::function<std::optional<Move>(const v1::Case&, const Lane&, std::mt19937&)>;

// Drives cases for one caller thread and records what was acknowledged.
class Driver {
 public:
  Driver(LocalFederation& fed, Ledger& ledger, std::string tag, uint32_t seed)
      : fed_(fed), stubs_(fed), ledger_(ledger), tag_(std::move(tag)), rng_(seed) {}

  // Reports a new case on the grid's node, retrying with the same request id while that
  // does not answer; false (the report is left pending) when `until` passes first.
  bool NewCase(const Lane& lane, v1::Severity severity, Clock::time_point until, v1::Case* out) {
    v1::ReportCommand report;
    report.set_request_id(tag_ + "-r" + std::to_string(++reports_));
    report.set_category("dispute.neighbour");
    report.set_severity(severity);
    report.mutable_place()->set_grid_id(lane.grid);
    report.mutable_place()->set_address("3号楼2单元");
    report.set_text("楼上楼下因漏水发生争吵");
    for (;;) {
      grpc::Status s =
          whistle::testing::Report(stubs_.Hosting(lane.grid), lane.worker, report, out);
      if (s.ok()) {
        ledger_.Reported(lane.worker, report, *out);
        return true;
      }
      ledger_.Failed(s);
      if (!Retryable(s.error_code())) {
        ADD_FAILURE() << "report " << report.request_id() << ": " << s.error_code() << " "
                      << s.error_message();
      }
      if (!Retryable(s.error_code()) || Clock::now() >= until) {
        ledger_.Pending(lane.worker, report);
        return false;
      }
      Backoff();
    }
  }

  // One attempt of `move` on the caller's own node, with a note unique to the attempt. OK:
  // recorded, and *known is the answer.
  grpc::Status Attempt(v1::Case* known, Move move) {
    const std::string note = kNotePrefix + tag_ + "/" + std::to_string(++attempts_);
    SetNote(move.command, note);
    v1::Case answer;
    grpc::Status s;
    for (int attempt = 0; attempt < 3; ++attempt) {
      s = Act(stubs_.Hosting(move.home), move.who, known->id(), move.command, &answer);
      // Not sent at all (no connection): the same attempt may go again.
      if (s.error_message().find("failed to connect") == std::string::npos) break;
      std::this_thread::sleep_for(100ms);
    }
    if (s.ok()) {
      ledger_.Stepped(answer, move.command, note, known->history_length());
      *known = std::move(answer);
    } else {
      ledger_.Failed(s);
    }
    return s;
  }

  // Moves the case on with `policy` until the policy has nothing more to do or `deadline`
  // passes. After a failure with an unknown outcome, re-reads the case from its owner and
  // goes on from there. Returns the last known state.
  v1::Case Drive(v1::Case known, const Lane& lane, const Policy& policy,
                 Clock::time_point deadline) {
    while (Clock::now() < deadline) {
      std::optional<Move> move = policy(known, lane, rng_);
      if (!move) break;
      const v1::Command command = move->command;
      grpc::Status s = Attempt(&known, std::move(*move));
      if (s.ok()) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (!Retryable(s.error_code())) {
        ADD_FAILURE() << "case " << known.id() << ": " << command.ShortDebugString() << ": "
                      << s.error_code() << " " << s.error_message();
        break;
      }
      Backoff();
      if (!ReadOwned(known.id(), &known, deadline)) break;
    }
    return known;
  }

  // The case as its owner holds it (the one node answering Get with read_only false);
  // false when no node does before `until` (owner down, or the case in transfer).
  bool ReadOwned(const std::string& id, v1::Case* out, Clock::time_point until) {
    for (;;) {
      for (const auto& n : fed_.plan()) {
        v1::Case c;
        if (Get(stubs_.For(n.name), kCityLeader, id, &c).ok() && !c.read_only()) {
          *out = std::move(c);
          return true;
        }
      }
      if (Clock::now() >= until) return false;
      Backoff();
    }
  }

  void Backoff() {
    std::uniform_int_distribution<int> ms(80, 250);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng_)));
  }

  std::mt19937& rng() { return rng_; }

 private:
  LocalFederation& fed_;
  Stubs stubs_;
  Ledger& ledger_;
  std::string tag_;
  std::mt19937 rng_;
  int reports_ = 0;
  int attempts_ = 0;
};

// Summons waiting for the department to report in / reported in and not yet done.
const v1::Summons* AwaitingReportIn(const v1::Case& c) {
  for (const auto& s : c.summons()) {
    if (s.reported_in_at_ms() == 0 && s.done_at_ms() == 0 && !s.no_show()) return &s;
  }
  return nullptr;
}
const v1::Summons* Working(const v1::Case& c) {
  for (const auto& s : c.summons()) {
    if (s.reported_in_at_ms() != 0 && s.done_at_ms() == 0) return &s;
  }
  return nullptr;
}

// Handling once the case is with someone: desks report in and finish their part, else the
// owner resolves; then the grid worker verifies, the owner closes, the reporter rates.
std::optional<Move> Finish(const v1::Case& c, const Lane& lane, bool fixed, int score) {
  const std::string& owner = c.owner_id();
  switch (c.state()) {
    case v1::CASE_STATE_DISPATCHED:
    case v1::CASE_STATE_IN_PROGRESS:
      if (const auto* s = AwaitingReportIn(c)) {
        return DeskDoes(s->department_id(), [](auto& m) { m.mutable_report_in(); });
      }
      if (const auto* s = Working(c)) {
        return DeskDoes(s->department_id(), [](auto& m) { m.mutable_resolve(); });
      }
      if (c.state() == v1::CASE_STATE_IN_PROGRESS) {
        return StaffDoes(owner, [](auto& m) { m.mutable_resolve(); });
      }
      return std::nullopt;
    case v1::CASE_STATE_RESOLVED:
      return WorkerDoes(lane, [fixed](auto& m) { m.mutable_verify()->set_fixed(fixed); });
    case v1::CASE_STATE_VERIFIED:
      return StaffDoes(owner, [](auto& m) { m.mutable_close(); });
    case v1::CASE_STATE_CLOSED:
      return WorkerDoes(lane, [score](auto& m) { m.mutable_evaluate()->set_score(score); });
    default:
      return std::nullopt;
  }
}

// Up to the lane's top (the county in the three-level tests), then the county whistles
// its own bureau; the grid worker verifies and rates on the township node (forwarded).
std::optional<Move> CountyFlow(const v1::Case& c, const Lane& lane, std::mt19937&) {
  const std::string& owner = c.owner_id();
  if (c.state() == v1::CASE_STATE_REPORTED) {
    return StaffDoes(owner, [](auto& m) { m.mutable_accept(); });
  }
  if (c.state() == v1::CASE_STATE_ACCEPTED) {
    if (owner != lane.top) return StaffDoes(owner, [](auto& m) { m.mutable_escalate(); });
    const std::string desk = DesksAt(owner).empty() ? "" : DesksAt(owner).front();
    if (desk.empty()) return StaffDoes(owner, [](auto& m) { m.mutable_keep(); });
    return StaffDoes(owner, [desk](auto& m) { m.mutable_whistle()->add_department_ids(desk); });
  }
  return Finish(c, lane, true, 5);
}

// Any valid lifecycle, at random: reject, return, escalate (up to the lane's top), whistle
// desks of the owner and sometimes of a level above (on another node), dispatch, keep,
// desks reporting in and finishing, verification failing now and then. Never supervise:
// a retried supervise may be recorded twice.
std::optional<Move> RandomFlow(const v1::Case& c, const Lane& lane, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  const double r = u(rng);
  const std::string& owner = c.owner_id();
  const v1::Level level = LevelOf(owner);
  const v1::Jurisdiction* parent = Tree().Parent(owner);
  const bool up = owner != lane.top && parent != nullptr;
  const bool township_or_above = level != v1::LEVEL_UNSPECIFIED && level <= v1::LEVEL_TOWNSHIP;
  auto whistle = [&] {
    std::vector<std::string> desks = DesksAt(owner);
    std::vector<std::string> pick = {desks[rng() % desks.size()]};
    if (u(rng) < 0.4 && parent != nullptr && !DesksAt(parent->id()).empty()) {
      auto above = DesksAt(parent->id());
      pick.push_back(above[rng() % above.size()]);
    }
    return StaffDoes(owner, [pick](auto& m) {
      for (const auto& d : pick) m.mutable_whistle()->add_department_ids(d);
    });
  };
  switch (c.state()) {
    case v1::CASE_STATE_REPORTED:
      if (r < 0.05) return StaffDoes(owner, [](auto& m) { m.mutable_reject(); });
      if (up && r < 0.12) return StaffDoes(owner, [](auto& m) { m.mutable_return_case(); });
      if (up && r < 0.25) return StaffDoes(owner, [](auto& m) { m.mutable_escalate(); });
      if (township_or_above && r < 0.4) return whistle();
      return StaffDoes(owner, [](auto& m) { m.mutable_accept(); });
    case v1::CASE_STATE_ACCEPTED:
      if (up && r < 0.35) return StaffDoes(owner, [](auto& m) { m.mutable_escalate(); });
      if (township_or_above && r < 0.65) return whistle();
      if (r < 0.85) {
        auto desks = DesksAt(township_or_above ? owner : parent->id());
        std::string desk = desks[rng() % desks.size()];
        return StaffDoes(owner, [desk](auto& m) { m.mutable_dispatch()->set_department_id(desk); });
      }
      return StaffDoes(owner, [](auto& m) { m.mutable_keep(); });
    case v1::CASE_STATE_DISPATCHED:
    case v1::CASE_STATE_IN_PROGRESS:
      if (up && r < 0.08) return StaffDoes(owner, [](auto& m) { m.mutable_escalate(); });
      if (Working(c) != nullptr && AwaitingReportIn(c) == nullptr && r > 0.75 &&
          c.state() == v1::CASE_STATE_IN_PROGRESS) {
        return StaffDoes(owner, [](auto& m) { m.mutable_resolve(); });
      }
      return Finish(c, lane, true, 1 + static_cast<int>(rng() % 5));
    default:
      return Finish(c, lane, u(rng) > 0.15, 1 + static_cast<int>(rng() % 5));
  }
}

// ---- Reading the whole federation back ----

struct Copy {
  v1::Case c;
  std::vector<v1::HistoryEntry> history;
};

struct Snapshot {
  std::map<std::string, std::map<std::string, Copy>> cases;  // case id -> node -> copy
  std::map<std::string, std::set<std::string>> listed;       // case id -> nodes owning it (List)
  std::map<int, int64_t> counted;  // state -> cases List shows owned, summed over nodes
  // node -> state -> cases (owned and copies) its List shows / its Count says
  std::map<std::string, std::map<int, int64_t>> node_listed, node_counted;
  std::vector<std::string> errors;  // calls that did not answer
};

Snapshot Take(LocalFederation& fed, Stubs& stubs, const std::set<std::string>& known) {
  Snapshot s;
  std::set<std::string> ids = known;
  for (const auto& n : fed.plan()) {
    auto& stub = stubs.For(n.name);
    std::string token;
    do {
      grpc::ClientContext ctx;
      kCityLeader.Apply(ctx);
      v1::ListCasesRequest req;
      req.set_jurisdiction_id(n.hosted);
      req.set_page_size(500);
      req.set_page_token(token);
      v1::ListCasesResponse page;
      grpc::Status st = stub.List(&ctx, req, &page);
      if (!st.ok()) {
        s.errors.push_back("List on " + n.name + ": " + st.error_message());
        break;
      }
      for (const auto& c : page.cases()) {
        if (!c.read_only()) {
          s.listed[c.id()].insert(n.name);
          ++s.counted[c.state()];
        }
        ++s.node_listed[n.name][c.state()];
        ids.insert(c.id());
      }
      token = page.next_page_token();
    } while (!token.empty());
    grpc::ClientContext ctx;
    kCityLeader.Apply(ctx);
    v1::CountCasesRequest req;
    req.set_jurisdiction_id(n.hosted);
    v1::CountCasesResponse counts;
    grpc::Status st = stub.Count(&ctx, req, &counts);
    if (!st.ok()) s.errors.push_back("Count on " + n.name + ": " + st.error_message());
    for (const auto& row : counts.counts()) {
      if (row.count() != 0) s.node_counted[n.name][row.state()] += row.count();
    }
  }
  for (const auto& id : ids) {
    auto& on = s.cases[id];
    for (const auto& n : fed.plan()) {
      auto& stub = stubs.For(n.name);
      v1::Case c;
      grpc::Status st = Get(stub, kCityLeader, id, &c);
      if (st.error_code() == Code::NOT_FOUND) continue;
      v1::GetHistoryResponse h;
      if (st.ok()) st = History(stub, kCityLeader, id, &h);
      if (!st.ok()) {
        s.errors.push_back("Get/History " + id + " on " + n.name + ": " + st.error_message());
        continue;
      }
      Copy& copy = on[n.name];
      copy.c = std::move(c);
      copy.history.assign(h.entries().begin(), h.entries().end());
    }
  }
  return s;
}

std::string Show(const v1::HistoryEntry& e) {
  return std::to_string(e.seq()) + ":" + v1::TransitionKind_Name(e.kind()) + "[" + e.note() + "]";
}

bool SameEntry(const v1::HistoryEntry& a, const v1::HistoryEntry& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

// Everything that is wrong with the federation as read, given what callers saw
// acknowledged; empty when all is well.
std::vector<std::string> Problems(LocalFederation& fed, const Snapshot& s, const Ledger& ledger) {
  std::vector<std::string> out = s.errors;
  std::map<std::string, std::vector<Acked>> acked;
  for (auto& a : ledger.Steps()) acked[a.case_id].push_back(a);
  std::map<std::string, std::set<std::string>> by_request;  // reporter/request id -> case ids
  std::map<int, int64_t> states;
  const auto reports = ledger.Reports();
  std::set<std::string> reported;
  for (const auto& [key, id] : reports) reported.insert(id);

  for (const auto& [id, on] : s.cases) {
    auto bad = [&, id = id](const std::string& what) { out.push_back("case " + id + ": " + what); };
    std::vector<std::string> owners;
    for (const auto& [node, copy] : on) {
      if (!copy.c.read_only()) owners.push_back(node);
    }
    if (owners.size() != 1) {
      std::string list;
      for (const auto& [node, copy] : on) {
        list += " " + node + (copy.c.read_only() ? "(copy)" : "(owner)");
      }
      bad(std::to_string(owners.size()) + " nodes own it:" + list);
      continue;
    }
    const std::string& owner_node = owners.front();
    const Copy& owner = on.at(owner_node);
    const auto& h = owner.history;
    if (fed.NodeFor(owner.c.owner_id()) != owner_node) {
      bad("owned on " + owner_node + " but its owner " + owner.c.owner_id() + " lives on " +
          fed.NodeFor(owner.c.owner_id()));
    }
    auto listed = s.listed.find(id);
    if (listed == s.listed.end() || listed->second != std::set<std::string>{owner_node}) {
      std::string where;
      if (listed != s.listed.end()) {
        for (const auto& n : listed->second) where += " " + n;
      }
      bad("listed as owned on [" + where + " ], owner node " + owner_node);
    }
    states[owner.c.state()]++;
    by_request[owner.c.reporter() + "/" + owner.c.request_id()].insert(id);
    if (reported.count(id) == 0) bad("no caller saw this case reported");
    // Gapless 1..n on every node holding it; copies are the owner's history up to their
    // length; nodes that touched the case hold all of it.
    for (const auto& [node, copy] : on) {
      if (static_cast<int64_t>(copy.history.size()) != copy.c.history_length()) {
        bad("on " + node + " history has " + std::to_string(copy.history.size()) +
            " entries, history_length " + std::to_string(copy.c.history_length()));
      }
      for (size_t i = 0; i < copy.history.size(); ++i) {
        const auto& e = copy.history[i];
        if (e.seq() != static_cast<int64_t>(i + 1) || e.case_id() != id) {
          bad("on " + node + " entry " + std::to_string(i) + " is " + Show(e));
          break;
        }
        if (i >= h.size() || !SameEntry(e, h[i])) {
          bad("on " + node + " entry " + Show(e) + " differs from the owner's " +
              (i < h.size() ? Show(h[i]) : std::string("(none)")));
          break;
        }
      }
      if (node != owner_node && copy.history.size() > h.size()) {
        bad("copy on " + node + " is longer than the owner's");
      }
    }
    for (const auto& t : owner.c.touched_ids()) {
      const std::string node = fed.NodeFor(t);
      auto it = on.find(node);
      if (it == on.end()) {
        bad("node " + node + " (touched by " + t + ") has no copy");
      } else if (it->second.history.size() != h.size()) {
        bad("copy on " + node + " (touched by " + t + ") has " +
            std::to_string(it->second.history.size()) + " of " + std::to_string(h.size()) +
            " entries");
      }
    }
    // Every acknowledged transition, exactly where its answer said.
    std::set<int64_t> acked_seqs;
    for (const auto& a : acked[id]) {
      if (!acked_seqs.insert(a.seq).second) {
        bad("two acknowledged transitions answered with seq " + std::to_string(a.seq));
      }
      if (a.seq < 1 || a.seq > static_cast<int64_t>(h.size())) {
        bad("acknowledged " + v1::TransitionKind_Name(a.kind) + " [" + a.note + "] at seq " +
            std::to_string(a.seq) + " is missing (history has " + std::to_string(h.size()) + ")");
        continue;
      }
      const auto& e = h[a.seq - 1];
      if (e.kind() != a.kind || e.note() != a.note) {
        bad("acknowledged " + v1::TransitionKind_Name(a.kind) + " [" + a.note + "] at seq " +
            std::to_string(a.seq) + ", history has " + Show(e));
      }
    }
    // No attempt took effect twice.
    std::map<std::string, int> notes;
    std::map<std::string, int> summoned, reported_in;
    for (const auto& e : h) {
      if (e.note().rfind(kNotePrefix, 0) == 0 && ++notes[e.note()] == 2) {
        bad("attempt [" + e.note() + "] recorded twice");
      }
      for (const auto& d : e.department_ids()) {
        if (e.kind() == v1::TRANSITION_KIND_WHISTLE || e.kind() == v1::TRANSITION_KIND_DISPATCH) {
          summoned[d]++;
        }
        if (e.kind() == v1::TRANSITION_KIND_REPORT_IN) reported_in[d]++;
      }
    }
    for (const auto& [d, n] : reported_in) {
      if (n > summoned[d]) {
        bad(d + " reported in " + std::to_string(n) + " times, summoned " +
            std::to_string(summoned[d]));
      }
    }
    std::set<std::string> open_summons;
    for (const auto& sm : owner.c.summons()) {
      if (sm.done_at_ms() == 0 && !open_summons.insert(sm.department_id()).second) {
        bad("summons of " + sm.department_id() + " held twice");
      }
    }
  }
  // One case per report; every acknowledged report found.
  for (const auto& [key, ids] : by_request) {
    if (ids.size() != 1) {
      std::string list;
      for (const auto& i : ids) list += " " + i;
      out.push_back("report " + key + " made " + std::to_string(ids.size()) + " cases:" + list);
    }
  }
  for (const auto& [key, id] : reports) {
    if (s.cases.count(id) == 0 || s.cases.at(id).empty()) {
      out.push_back("report " + key + " (case " + id + ") is nowhere");
    }
  }
  // Per-state owned cases over every node's hosted subtree: each case listed once, by its owner.
  for (int st = 1; st < v1::CaseState_ARRAYSIZE; ++st) {
    int64_t want = states.count(st) ? states.at(st) : 0;
    int64_t got = s.counted.count(st) ? s.counted.at(st) : 0;
    if (want != got) {
      out.push_back("List summed over nodes shows " + std::to_string(got) + " owned " +
                    v1::CaseState_Name(static_cast<v1::CaseState>(st)) + ", cases found " +
                    std::to_string(want));
    }
  }
  // Each node's Count (owned and copies in its subtree) agrees with its List.
  for (const auto& n : fed.plan()) {
    auto listed = s.node_listed.count(n.name) ? s.node_listed.at(n.name) : std::map<int, int64_t>{};
    auto counted =
        s.node_counted.count(n.name) ? s.node_counted.at(n.name) : std::map<int, int64_t>{};
    if (listed != counted) {
      std::string detail;
      for (int st = 1; st < v1::CaseState_ARRAYSIZE; ++st) {
        int64_t l = listed.count(st) ? listed.at(st) : 0,
                c = counted.count(st) ? counted.at(st) : 0;
        if (l != c) {
          detail += " " + v1::CaseState_Name(static_cast<v1::CaseState>(st)) + " listed " +
                    std::to_string(l) + " counted " + std::to_string(c);
        }
      }
      out.push_back("on " + n.name + " Count and List disagree:" + detail);
    }
  }
  return out;
}

// Retries reports nobody saw answered (all nodes up now), so every case is known.
void SettlePendingReports(LocalFederation& fed, Ledger& ledger) {
  Stubs stubs(fed);
  for (const auto& [who, report] : ledger.PendingReports()) {
    v1::Case c;
    bool ok = WaitFor(
        [&] {
          grpc::Status s = Report(stubs.Hosting(who.jurisdiction), who, report, &c);
          if (!s.ok()) std::this_thread::sleep_for(200ms);
          return s.ok();
        },
        60s);
    EXPECT_TRUE(ok) << "report " << report.request_id() << " never answered";
    if (ok) ledger.Reported(who, report, c);
  }
}

// Waits until the federation is quiet, then reads it back until nothing is wrong (copies
// may trail the drained outboxes by a refresh) or the bound passes; fails with the list.
void ExpectConsistent(LocalFederation& fed, Ledger& ledger) {
  SettlePendingReports(fed, ledger);
  std::string why;
  EXPECT_TRUE(WaitQuiet(fed, kConverge, &why)) << "not quiet: " << why << "\n" << fed.Describe();
  std::set<std::string> known;
  for (const auto& [key, id] : ledger.Reports()) known.insert(id);
  Stubs stubs(fed);
  std::vector<std::string> problems;
  auto until = Clock::now() + 30s;
  size_t cases = 0, entries = 0;
  do {
    Snapshot s = Take(fed, stubs, known);
    cases = s.cases.size();
    entries = 0;
    for (const auto& [id, on] : s.cases) {
      for (const auto& [node, copy] : on) {
        if (!copy.c.read_only()) entries += copy.history.size();
      }
    }
    problems = Problems(fed, s, ledger);
    if (std::getenv("WHISTLE_FAULT_VERBOSE") != nullptr) {
      std::set<std::pair<std::string, int64_t>> acked;
      for (const auto& a : ledger.Steps()) acked.insert({a.case_id, a.seq});
      for (const auto& [id, on] : s.cases) {
        for (const auto& [node, copy] : on) {
          if (copy.c.read_only()) continue;
          std::printf("%s on %s:", id.c_str(), node.c_str());
          for (const auto& e : copy.history) {
            std::printf(" %s%s", Show(e).c_str(), acked.count({id, e.seq()}) ? "" : "(!)");
          }
          std::printf("\n");
        }
      }
    }
    if (problems.empty()) break;
    std::this_thread::sleep_for(1s);
  } while (Clock::now() < until);
  std::string list;
  for (size_t i = 0; i < problems.size() && i < 30; ++i) list += "  " + problems[i] + "\n";
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems over " << cases << " cases:\n"
                                << list << fed.Describe(10);
  std::printf("[ verified ] %zu cases, %zu history entries; callers saw %s\n", cases, entries,
              ledger.Summary().c_str());
}

// Get and History of `id` on `node` (as the city leader), retried while the call itself
// does not get through.
grpc::Status ReadCase(WhistledProcess& node, const std::string& id, v1::Case* c,
                      v1::GetHistoryResponse* h) {
  auto stub = node.cases();
  for (int attempt = 0;; ++attempt) {
    grpc::Status s = Get(*stub, kCityLeader, id, c);
    if (s.ok()) s = History(*stub, kCityLeader, id, h);
    if (!Transient(s) || attempt == 5) return s;
    std::this_thread::sleep_for(200ms);
  }
}

// A verify of `id` on `node`, owned across a link that is down: the node refuses it at
// once (retried only while the call does not reach the node at all).
grpc::Status RefusedForLinkDown(WhistledProcess& node, const Identity& who, const std::string& id) {
  auto stub = node.cases();
  grpc::Status s;
  for (int attempt = 0; attempt < 5; ++attempt) {
    v1::Case out;
    s = Act(*stub, who, id, Cmd([](auto& x) { x.mutable_verify()->set_fixed(true); }), &out);
    if (s.error_message().find("failed to connect") == std::string::npos) break;
    std::this_thread::sleep_for(200ms);
  }
  return s;
}

std::string LinkLine(WhistledProcess& node, const std::string& peer) {
  return LinkOf(node, peer).ShortDebugString();
}

class FederationFaultTest : public ::testing::Test {
 protected:
  // City, county and township nodes into federation_, the township's parent link
  // through proxy_; returns once every link is up.
  void StartProxiedThreeLevel() {
    FederationOptions options;
    options.proxied = {"dwk-s01"};
    federation_ =
        std::make_unique<LocalFederation>(LocalFederation::ThreeLevel("dwk-s01"), options);
    ASSERT_TRUE(federation_->ok()) << federation_->Describe();
    ASSERT_TRUE(WaitFor([&] { return AllLinksUp(*federation_); }, 30s)) << federation_->Describe();
    proxy_ = federation_->proxy("dwk-s01");
    ASSERT_NE(proxy_, nullptr);
  }

  // To the county: community accepts, escalates to the street, the street to the county
  // (another node: answered once durable on the township node).
  static void ToCounty(Driver& d, v1::Case* c, const Lane& lane) {
    for (const Move& m : {StaffDoes(lane.community, [](auto& x) { x.mutable_accept(); }),
                          StaffDoes(lane.community, [](auto& x) { x.mutable_escalate(); }),
                          StaffDoes(lane.township, [](auto& x) { x.mutable_escalate(); })}) {
      grpc::Status s = d.Attempt(c, m);
      ASSERT_TRUE(s.ok()) << m.command.ShortDebugString() << " on " << c->id() << ": "
                          << s.error_code() << " " << s.error_message();
    }
    ASSERT_EQ(c->owner_id(), lane.county);
  }

  // Case `id` is owned on `owner` and every other node in `copies` holds the same history.
  static void ExpectSameEverywhere(WhistledProcess& owner,
                                   const std::vector<WhistledProcess*>& copies,
                                   const std::string& id) {
    v1::Case c;
    v1::GetHistoryResponse reference;
    grpc::Status s = ReadCase(owner, id, &c, &reference);
    ASSERT_TRUE(s.ok()) << id << ": " << s.error_code() << " " << s.error_message();
    EXPECT_FALSE(c.read_only()) << id;
    for (size_t i = 0; i < static_cast<size_t>(reference.entries_size()); ++i) {
      EXPECT_EQ(reference.entries(static_cast<int>(i)).seq(), static_cast<int64_t>(i + 1)) << id;
    }
    for (WhistledProcess* node : copies) {
      v1::GetHistoryResponse h;
      v1::Case copy;
      s = ReadCase(*node, id, &copy, &h);
      ASSERT_TRUE(s.ok()) << id << " on " << node->address() << ": " << s.error_message();
      EXPECT_TRUE(copy.read_only()) << id << " on " << node->address();
      EXPECT_EQ(copy.owner_id(), c.owner_id()) << id;
      ASSERT_EQ(h.entries_size(), reference.entries_size()) << id << " on " << node->address();
      for (int i = 0; i < h.entries_size(); ++i) {
        EXPECT_TRUE(SameEntry(h.entries(i), reference.entries(i)))
            << id << " entry " << i << " on " << node->address() << ": " << Show(h.entries(i))
            << " vs " << Show(reference.entries(i));
      }
    }
  }

  std::unique_ptr<LocalFederation> federation_;  // StartProxiedThreeLevel
  TcpProxy* proxy_ = nullptr;
};

// 1. Twenty cases driven by four callers through escalations township -> county and
// county-side handling; the county is SIGKILLed twice while calls are in flight and
// restarted.
TEST_F(FederationFaultTest, CountySigkilledMidFlowAndRestartedLosesAndDuplicatesNothing) {
  LocalFederation fed(LocalFederation::ThreeLevel("dwk-s01"));
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); }, 30s)) << fed.Describe();
  const std::string county = fed.NodeFor("dwk");
  Ledger ledger;
  constexpr int kCallers = 4, kCasesEach = 5;
  const auto deadline = Clock::now() + 180s;  // a bound only: the cases finish long before
  std::vector<std::vector<v1::Case>> finals(kCallers);
  std::atomic<int> done{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      const std::string tag = "k" + std::to_string(t);
      Driver d(fed, ledger, tag, 100 + t);
      Lane lane = MakeLane("dwk-s01", t, "dwk", tag);
      for (int i = 0; i < kCasesEach; ++i) {
        v1::Case c;
        if (!d.NewCase(lane, v1::SEVERITY_GENERAL, deadline, &c)) break;
        finals[t].push_back(d.Drive(c, lane, CountyFlow, deadline));
      }
      done++;
    });
  }
  // Kill while the callers are busy (11 transitions per case, 220 in all).
  int kills = 0;
  for (size_t at : {40u, 120u}) {
    if (!WaitFor([&] { return ledger.acked() >= at || done == kCallers; }, 120s) ||
        done == kCallers) {
      break;
    }
    EXPECT_EQ(fed.Kill(county), -SIGKILL);
    ++kills;
    std::this_thread::sleep_for(1500ms);
    EXPECT_TRUE(fed.Restart(county)) << fed.Describe();
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(kills, 2) << "the callers finished before the kills";
  int evaluated = 0;
  for (const auto& cases : finals) {
    for (const auto& c : cases) {
      EXPECT_EQ(c.state(), v1::CASE_STATE_EVALUATED) << c.ShortDebugString();
      evaluated += c.state() == v1::CASE_STATE_EVALUATED;
    }
  }
  EXPECT_EQ(evaluated, kCallers * kCasesEach);
  std::printf("[ faults   ] %d county kills; calls failed while it was down: UNAVAILABLE x%d\n",
              kills, ledger.failures(Code::UNAVAILABLE));
  ExpectNoConflicts(ledger);
  ExpectConsistent(fed, ledger);
}

// 2. The county is down for seconds: the township keeps taking reports and escalations
// (answered, durable locally, queued for the parent link), then everything arrives once.
TEST_F(FederationFaultTest, CountyDownForSecondsThenEverythingArrivesOnceInOrder) {
  LocalFederation fed(LocalFederation::ThreeLevel("dwk-s01"));
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); }, 30s)) << fed.Describe();
  Ledger ledger;
  Driver d(fed, ledger, "p0", 7);
  Lane lane = MakeLane("dwk-s01", 0, "dwk", "p0");
  auto& township = fed.NodeHosting(lane.township);
  auto& county = fed.NodeHosting(lane.county);
  const std::string police = lane.township + "-police_station";
  const std::string bureau = lane.county + "-public_security";
  const auto far = Clock::now() + 120s;

  // Before the outage: two cases owned by the county; two the township handles jointly
  // with a county bureau (the county node keeps copies of those).
  std::vector<v1::Case> escalated, joint;
  for (int i = 0; i < 2; ++i) {
    v1::Case c;
    ASSERT_TRUE(d.NewCase(lane, v1::SEVERITY_GENERAL, far, &c));
    ASSERT_NO_FATAL_FAILURE(ToCounty(d, &c, lane));
    escalated.push_back(c);
  }
  for (int i = 0; i < 2; ++i) {
    v1::Case c;
    ASSERT_TRUE(d.NewCase(lane, v1::SEVERITY_GENERAL, far, &c));
    for (const Move& m : {StaffDoes(lane.community, [](auto& x) { x.mutable_accept(); }),
                          StaffDoes(lane.community, [](auto& x) { x.mutable_escalate(); }),
                          StaffDoes(lane.township, [&](auto& x) {
                            x.mutable_whistle()->add_department_ids(police);
                            x.mutable_whistle()->add_department_ids(bureau);
                          })}) {
      ASSERT_TRUE(d.Attempt(&c, m).ok()) << m.command.ShortDebugString();
    }
    joint.push_back(c);
  }
  std::string why;
  ASSERT_TRUE(WaitQuiet(fed, kConverge, &why)) << why;

  ASSERT_EQ(fed.Kill(fed.NodeFor(lane.county)), -SIGKILL);
  const auto down_at = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return !LinkOf(township, "parent").connected(); }, 15s))
      << LinkLine(township, "parent");

  // The township goes on: ten more cases escalated to the county, each answered at once.
  auto escalate_more = [&](int n) {
    for (int i = 0; i < n; ++i) {
      v1::Case c;
      ASSERT_TRUE(d.NewCase(lane, v1::SEVERITY_GENERAL, far, &c));
      ASSERT_NO_FATAL_FAILURE(ToCounty(d, &c, lane));
      escalated.push_back(c);
    }
  };
  ASSERT_NO_FATAL_FAILURE(escalate_more(5));
  uint64_t depth1 = 0;
  ASSERT_TRUE(
      WaitFor([&] { return (depth1 = LinkOf(township, "parent").outbox_depth()) >= 5; }, 15s))
      << LinkLine(township, "parent");
  ASSERT_NO_FATAL_FAILURE(escalate_more(5));
  // The joint cases move on at the township; their copies for the county queue up too.
  for (auto& c : joint) {
    ASSERT_TRUE(d.Attempt(&c, DeskDoes(police, [](auto& x) { x.mutable_report_in(); })).ok());
    ASSERT_TRUE(d.Attempt(&c, DeskDoes(police, [](auto& x) { x.mutable_resolve(); })).ok());
    EXPECT_EQ(c.state(), v1::CASE_STATE_IN_PROGRESS);  // the bureau's part is open
  }
  uint64_t depth2 = 0;
  ASSERT_TRUE(WaitFor(
      [&] { return (depth2 = LinkOf(township, "parent").outbox_depth()) >= depth1 + 5 + 4; }, 15s))
      << "outbox depth " << depth1 << " then " << LinkLine(township, "parent");
  v1::LinkStatus parent = LinkOf(township, "parent");
  EXPECT_FALSE(parent.connected());
  EXPECT_FALSE(parent.last_error().empty());
  EXPECT_GT(parent.outbox_oldest_ms(), 0);
  double metric = -1;
  EXPECT_TRUE(WaitFor(
      [&] {
        metric = MetricSample(HttpGet(township.metrics_address(), "/metrics"),
                              "whistle_link_outbox_depth", "peer=\"parent\"");
        return metric >= static_cast<double>(depth2);
      },
      10s))
      << "whistle_link_outbox_depth{peer=\"parent\"} = " << metric << ", GetLinks " << depth2;
  // A command for a county-owned case needs the county: refused at once, nothing changes.
  {
    grpc::Status s = RefusedForLinkDown(township, lane.worker, escalated[0].id());
    EXPECT_EQ(s.error_code(), Code::UNAVAILABLE) << s.error_message();
    EXPECT_NE(s.error_message().find("node link"), std::string::npos) << s.error_message();
  }
  // Keep it down for a while.
  std::this_thread::sleep_for(std::chrono::milliseconds(4000) - (Clock::now() - down_at));
  std::printf("[ outage   ] county down %.1f s; township outbox %lu -> %lu; metric %.0f\n",
              Seconds(Clock::now() - down_at), static_cast<unsigned long>(depth1),
              static_cast<unsigned long>(depth2), metric);

  ASSERT_TRUE(fed.Restart(fed.NodeFor(lane.county))) << fed.Describe();
  ASSERT_TRUE(WaitQuiet(fed, kConverge, &why)) << why << "\n" << fed.Describe();
  parent = LinkOf(township, "parent");
  EXPECT_EQ(parent.outbox_depth(), 0u);
  EXPECT_GE(parent.reconnects(), 1u);
  // The county owns every escalated case, with the township's history entry by entry.
  for (const auto& c : escalated) {
    ASSERT_NO_FATAL_FAILURE(ExpectSameEverywhere(county, {&township}, c.id()));
  }
  for (const auto& c : joint) {
    ASSERT_NO_FATAL_FAILURE(ExpectSameEverywhere(township, {&county}, c.id()));
  }
  // Exactly these cases are the county's: nothing lost, nothing twice.
  {
    v1::ListCasesRequest req;
    req.set_jurisdiction_id(lane.county);
    req.set_page_size(500);
    v1::ListCasesResponse listed;
    grpc::Status s;
    auto stub = county.cases();
    for (int attempt = 0; attempt < 5; ++attempt) {
      grpc::ClientContext ctx;
      kCityLeader.Apply(ctx);
      if (!Transient(s = stub->List(&ctx, req, &listed))) break;
      std::this_thread::sleep_for(200ms);
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
    // The county lists its subtree: the escalated cases as its own, the
    // township's others as read-only copies.
    std::multiset<std::string> got, want;
    for (const auto& c : listed.cases()) {
      if (!c.read_only()) got.insert(c.id());
    }
    for (const auto& c : escalated) want.insert(c.id());
    EXPECT_EQ(got, want);
  }
  // And they go on there: the county handles them; the grid worker verifies and rates from
  // the township node; the bureau finishes the joint cases from the county node.
  for (auto& c : escalated) {
    c = d.Drive(c, lane, CountyFlow, far);
    EXPECT_EQ(c.state(), v1::CASE_STATE_EVALUATED) << c.id();
  }
  for (auto& c : joint) {
    c = d.Drive(c, lane, CountyFlow, far);
    EXPECT_EQ(c.state(), v1::CASE_STATE_EVALUATED) << c.id();
  }
  ExpectNoConflicts(ledger);
  ExpectConsistent(fed, ledger);
}

// 3a. The township's cable to the county is cut (nothing moves, nothing is closed): the
// link is declared down after three silent keepalives, escalations keep being accepted,
// and once the cable is back the link reconnects and delivers everything once.
TEST_F(FederationFaultTest, PausedLinkIsDetectedDownAndDeliversEverythingOnceAfterResume) {
  ASSERT_NO_FATAL_FAILURE(StartProxiedThreeLevel());
  LocalFederation& fed = *federation_;
  TcpProxy* proxy = proxy_;
  Ledger ledger;
  Driver d(fed, ledger, "c0", 11);
  Lane lane = MakeLane("dwk-s01", 1, "dwk", "c0");
  auto& township = fed.NodeHosting(lane.township);
  auto& county = fed.NodeHosting(lane.county);
  const auto far = Clock::now() + 120s;

  std::vector<v1::Case> escalated(1);
  ASSERT_TRUE(d.NewCase(lane, v1::SEVERITY_GENERAL, far, &escalated[0]));
  ASSERT_NO_FATAL_FAILURE(ToCounty(d, &escalated[0], lane));
  std::string why;
  ASSERT_TRUE(WaitQuiet(fed, kConverge, &why)) << why;
  const uint64_t reconnects_before = LinkOf(township, "parent").reconnects();

  proxy->Pause();
  const auto cut_at = Clock::now();
  // Keepalive 200 ms: silent for three periods (600 ms) is down; generous for ASan.
  ASSERT_TRUE(WaitFor([&] { return !LinkOf(township, "parent").connected(); }, 15s))
      << LinkLine(township, "parent");
  const double detected = Seconds(Clock::now() - cut_at);
  EXPECT_LT(detected, 5.0);
  EXPECT_TRUE(WaitFor([&] { return !LinkOf(county, "dwk-s01").connected(); }, 15s))
      << LinkLine(county, "dwk-s01");
  for (int i = 0; i < 8; ++i) {
    v1::Case c;
    ASSERT_TRUE(d.NewCase(lane, v1::SEVERITY_GENERAL, far, &c));
    ASSERT_NO_FATAL_FAILURE(ToCounty(d, &c, lane));
    escalated.push_back(c);
  }
  EXPECT_TRUE(WaitFor([&] { return LinkOf(township, "parent").outbox_depth() >= 8; }, 15s))
      << LinkLine(township, "parent");
  {
    grpc::Status s = RefusedForLinkDown(township, lane.worker, escalated[0].id());
    EXPECT_EQ(s.error_code(), Code::UNAVAILABLE) << s.error_message();
    EXPECT_NE(s.error_message().find("node link"), std::string::npos) << s.error_message();
  }
  std::this_thread::sleep_for(1s);

  proxy->Resume();
  const auto healed_at = Clock::now();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto l = LinkOf(township, "parent");
        return l.connected() && l.reconnects() >= reconnects_before + 1;
      },
      30s))
      << LinkLine(township, "parent");
  std::printf("[ cut      ] down detected after %.2f s; reconnected %.2f s after resume\n",
              detected, Seconds(Clock::now() - healed_at));
  ASSERT_TRUE(WaitQuiet(fed, kConverge, &why)) << why << "\n" << fed.Describe();
  for (auto& c : escalated) {
    ASSERT_NO_FATAL_FAILURE(ExpectSameEverywhere(county, {&township}, c.id()));
    c = d.Drive(c, lane, CountyFlow, far);
    EXPECT_EQ(c.state(), v1::CASE_STATE_EVALUATED) << c.id();
  }
  ExpectNoConflicts(ledger);
  ExpectConsistent(fed, ledger);
}

// 3c. A report sent on up the township's parent link whose answer is lost (the cable is
// cut while it is under way): its retry is refused while that link is down, also after the
// township node restarts, instead of being taken on the township (a second case when the
// first one went through); once the link is back the retry gets the one case.
TEST_F(FederationFaultTest, ReportWhoseAnswerWasLostIsNotTakenTwice) {
  ASSERT_NO_FATAL_FAILURE(StartProxiedThreeLevel());
  LocalFederation& fed = *federation_;
  TcpProxy* proxy = proxy_;
  Ledger ledger;
  Lane lane = MakeLane("dwk-s01", 0, "szs", "q0");
  const std::string name = fed.NodeFor(lane.grid);
  auto& township = fed.node(name);
  v1::ReportCommand report;  // extraordinary: the city owns it, two links up
  report.set_request_id("q0-r1");
  report.set_category("dispute.neighbour");
  report.set_severity(v1::SEVERITY_EXTRAORDINARY);
  report.mutable_place()->set_grid_id(lane.grid);
  report.set_text("楼上楼下因漏水发生争吵");
  auto report_once = [&](v1::Case* out) {
    grpc::Status s;
    for (int attempt = 0; attempt < 10; ++attempt) {
      auto stub = township.cases();
      s = Report(*stub, lane.worker, report, out);
      if (s.error_message().find("failed to connect") == std::string::npos) break;
      std::this_thread::sleep_for(200ms);
    }
    return s;
  };

  proxy->Pause();
  v1::Case c;
  grpc::Status first = report_once(&c);
  ASSERT_EQ(first.error_code(), Code::UNAVAILABLE) << first.error_message();
  ASSERT_TRUE(WaitFor([&] { return !LinkOf(township, "parent").connected(); }, 15s))
      << LinkLine(township, "parent");
  for (int round = 0; round < 2; ++round) {
    grpc::Status again = report_once(&c);
    EXPECT_EQ(again.error_code(), Code::UNAVAILABLE) << round << ": " << c.ShortDebugString();
    EXPECT_NE(again.error_message().find("answer was lost"), std::string::npos)
        << again.error_message();
    if (round == 0) {  // the mark is durable: the same after a SIGKILL
      EXPECT_EQ(fed.Kill(name), -SIGKILL);
      ASSERT_TRUE(fed.Restart(name)) << fed.Describe();
    }
  }

  proxy->Resume();
  ASSERT_TRUE(WaitFor([&] { return LinkOf(township, "parent").connected(); }, 30s))
      << LinkLine(township, "parent");
  grpc::Status ok;
  ASSERT_TRUE(WaitFor(
      [&] {
        ok = report_once(&c);
        return ok.ok();
      },
      30s))
      << ok.error_code() << " " << ok.error_message();
  EXPECT_EQ(c.owner_id(), "szs");
  ledger.Reported(lane.worker, report, c);
  v1::Case same;
  ASSERT_TRUE(report_once(&same).ok());
  EXPECT_EQ(same.id(), c.id());
  std::string why;
  ASSERT_TRUE(WaitQuiet(fed, kConverge, &why)) << why;
  ExpectConsistent(fed, ledger);  // one case for the report, on every node
}

// 3b. The cable is reset (RST both ways) again and again while two callers escalate cases
// to the county and handle them there: the link comes back each time, nothing is lost or
// applied twice.
TEST_F(FederationFaultTest, ResetLinkReconnectsAndDeliversEverythingOnce) {
  ASSERT_NO_FATAL_FAILURE(StartProxiedThreeLevel());
  LocalFederation& fed = *federation_;
  TcpProxy* proxy = proxy_;
  auto& township = fed.NodeHosting("dwk-s01");
  Ledger ledger;
  const auto stop_at = Clock::now() + 8s;
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&, t] {
      const std::string tag = "x" + std::to_string(t);
      Driver d(fed, ledger, tag, 200 + t);
      Lane lane = MakeLane("dwk-s01", 2 + t, "dwk", tag);
      while (Clock::now() < stop_at) {
        v1::Case c;
        if (!d.NewCase(lane, v1::SEVERITY_GENERAL, stop_at, &c)) break;
        d.Drive(c, lane, CountyFlow, stop_at);
      }
    });
  }
  int drops = 0;
  while (Clock::now() + 1200ms < stop_at) {
    std::this_thread::sleep_for(1200ms);
    proxy->DropAll();
    ++drops;
  }
  for (auto& t : callers) t.join();
  ASSERT_TRUE(WaitFor([&] { return LinkOf(township, "parent").connected(); }, 30s))
      << LinkLine(township, "parent");
  v1::LinkStatus parent = LinkOf(township, "parent");
  EXPECT_GE(parent.reconnects(), 1u) << parent.ShortDebugString();
  std::printf("[ resets   ] %d resets; township parent link: reconnects %lu, resends %lu\n", drops,
              static_cast<unsigned long>(parent.reconnects()),
              static_cast<unsigned long>(parent.resends()));
  EXPECT_GT(ledger.acked(), 40u) << ledger.Summary();
  ExpectNoConflicts(ledger);
  ExpectConsistent(fed, ledger);
}

// 4. Chaos, bounded by wall time: five nodes (city, three counties, one township split
// off its county), six callers driving random lifecycles on their own nodes, and a node
// SIGKILLed at random every 2-5 s and restarted 0.5-2 s later.
TEST_F(FederationFaultTest, ChaosOfKillsAndRestartsKeepsOneOwnerAndEveryAcknowledgedTransition) {
  auto node = [](std::string hosted, std::vector<std::string> children, std::string parent) {
    return FederationNode{hosted, LocalFederation::NodeIdFor(hosted), hosted, std::move(children),
                          std::move(parent)};
  };
  std::vector<FederationNode> plan = {node("szs", {"dwk", "hn", "pl"}, ""),
                                      node("dwk", {"dwk-s01"}, "szs"), node("dwk-s01", {}, "dwk"),
                                      node("hn", {}, "szs"), node("pl", {}, "szs")};
  LocalFederation fed(plan);
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); }, 30s)) << fed.Describe();

  int seconds = 75;
  if (const char* env = std::getenv("WHISTLE_CHAOS_SECONDS")) seconds = std::atoi(env);
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::seconds(seconds);
  Ledger ledger;
  struct Caller {
    std::string township;
    size_t community;
    std::string top;
  };
  const std::vector<Caller> lanes = {{"dwk-s01", 0, "szs"}, {"dwk-s01", 1, "szs"},
                                     {"dwk-s01", 2, "dwk"}, {"dwk-s02", 0, "szs"},
                                     {"hn-s01", 0, "szs"},  {"pl-s01", 0, "szs"}};
  const uint32_t seed = static_cast<uint32_t>(std::random_device{}());
  std::printf("[ chaos    ] %d s, seed %u\n", seconds, seed);
  std::vector<std::thread> callers;
  std::atomic<int> cases{0};
  for (size_t t = 0; t < lanes.size(); ++t) {
    callers.emplace_back([&, t] {
      const std::string tag = "z" + std::to_string(t);
      Driver d(fed, ledger, tag, seed + static_cast<uint32_t>(t));
      Lane lane = MakeLane(lanes[t].township, lanes[t].community, lanes[t].top, tag);
      std::discrete_distribution<int> severity({70, 20, 8, 2});
      const v1::Severity severities[] = {v1::SEVERITY_GENERAL, v1::SEVERITY_SERIOUS,
                                         v1::SEVERITY_MAJOR, v1::SEVERITY_EXTRAORDINARY};
      while (Clock::now() < deadline) {
        v1::Case c;
        if (!d.NewCase(lane, severities[severity(d.rng())], deadline, &c)) break;
        cases++;
        d.Drive(c, lane, RandomFlow, deadline);
      }
    });
  }
  // The chaos: one node at a time, any node.
  std::vector<std::string> killed;
  std::thread chaos([&] {
    std::mt19937 rng(seed ^ 0x5eed);
    std::uniform_int_distribution<int> gap(2000, 5000), down(500, 2000);
    std::uniform_int_distribution<size_t> pick(0, plan.size() - 1);
    for (;;) {
      auto next = Clock::now() + std::chrono::milliseconds(gap(rng));
      if (next >= deadline) break;
      std::this_thread::sleep_until(next);
      const std::string name = plan[pick(rng)].name;
      EXPECT_EQ(fed.Kill(name), -SIGKILL) << name;
      killed.push_back(name);
      std::this_thread::sleep_for(std::chrono::milliseconds(down(rng)));
      EXPECT_TRUE(fed.Restart(name)) << name << "\n" << fed.Describe();
    }
  });
  chaos.join();
  for (auto& t : callers) t.join();
  for (const auto& n : plan) {
    if (!fed.node(n.name).running()) {
      EXPECT_TRUE(fed.Restart(n.name)) << n.name;
    }
  }
  std::string kills;
  for (const auto& k : killed) kills += " " + k;
  std::printf("[ chaos    ] %.1f s of chaos, %d cases, %zu kills:%s\n",
              Seconds(Clock::now() - started), cases.load(), killed.size(), kills.c_str());
  EXPECT_GE(killed.size(), static_cast<size_t>(seconds / 10));
  EXPECT_GT(ledger.acked(), 100u) << ledger.Summary();
  ExpectConsistent(fed, ledger);
  std::printf("[ chaos    ] done after %.1f s\n", Seconds(Clock::now() - started));
}

// 5. A storm of resets (every 20-80 ms) while three callers escalate to the county as fast
// as they can: each reconnect starts a session while the township's commit thread is
// writing entries for the parent. Regression test for a session that took an outbox entry
// numbered but not yet written for sent, skipped it, and had it trimmed by the next ack:
// the case was then owned by nobody (store.cc LastOutboxSeq counted numbered entries).
TEST_F(FederationFaultTest, ResetStormWhileEscalatingLosesNoTransfer) {
  ASSERT_NO_FATAL_FAILURE(StartProxiedThreeLevel());
  LocalFederation& fed = *federation_;
  TcpProxy* proxy = proxy_;
  auto& township = fed.NodeHosting("dwk-s01");
  Ledger ledger;
  int secs = 10;
  if (const char* env = std::getenv("WHISTLE_STORM_SECONDS")) secs = std::atoi(env);
  const auto stop_at = Clock::now() + std::chrono::seconds(secs);
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&, t] {
      const std::string tag = "s" + std::to_string(t);
      Driver d(fed, ledger, tag, 300 + t);
      Lane lane = MakeLane("dwk-s01", t, "dwk", tag);
      while (Clock::now() < stop_at) {
        v1::Case c;
        if (!d.NewCase(lane, v1::SEVERITY_GENERAL, stop_at, &c)) break;
        for (const Move& m : {StaffDoes(lane.community, [](auto& x) { x.mutable_escalate(); }),
                              StaffDoes(lane.township, [](auto& x) { x.mutable_escalate(); })}) {
          if (!d.Attempt(&c, m).ok()) break;
        }
      }
    });
  }
  int drops = 0;
  std::mt19937 rng(5);
  while (Clock::now() < stop_at) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 60));
    proxy->DropAll();
    ++drops;
  }
  for (auto& t : callers) t.join();
  v1::LinkStatus parent = LinkOf(township, "parent");
  std::printf("[ storm    ] %d resets; township parent link: reconnects %lu, resends %lu\n", drops,
              static_cast<unsigned long>(parent.reconnects()),
              static_cast<unsigned long>(parent.resends()));
  EXPECT_GE(parent.reconnects(), 1u);
  ExpectNoConflicts(ledger);
  ExpectConsistent(fed, ledger);
}

// 6. A backlog on a cut link, then a command forwarded from the middle node: the county's
// bureau reports in (through the county node) on a township case while hundreds of
// envelopes of that case wait to cross the healed link, each carrying the whole history.
// The city node (its bureau touched the case) gets copies only as the county relays them,
// and the county applies the answer's copy without relaying it: the city must still end
// with the owner's history.
TEST_F(FederationFaultTest, CopyReachesTheNodeBeyondAfterABacklogAndAForwardFromTheMiddle) {
  ASSERT_NO_FATAL_FAILURE(StartProxiedThreeLevel());
  LocalFederation& fed = *federation_;
  Ledger ledger;
  Driver d(fed, ledger, "o0", 17);
  Lane lane = MakeLane("dwk-s01", 0, "dwk", "o0");
  auto& township = fed.NodeHosting(lane.township);
  auto& county = fed.NodeHosting(lane.county);
  auto& city = fed.NodeHosting("szs");
  const std::string police = lane.township + "-police_station";
  const std::string bureau = lane.county + "-public_security";
  const std::string city_bureau = "szs-public_security";
  v1::Case c;
  ASSERT_TRUE(d.NewCase(lane, v1::SEVERITY_GENERAL, Clock::now() + 60s, &c));
  for (const Move& m : {StaffDoes(lane.community, [](auto& x) { x.mutable_accept(); }),
                        StaffDoes(lane.community, [](auto& x) { x.mutable_escalate(); }),
                        StaffDoes(lane.township, [&](auto& x) {
                          x.mutable_whistle()->add_department_ids(police);
                          x.mutable_whistle()->add_department_ids(bureau);
                          x.mutable_whistle()->add_department_ids(city_bureau);
                        })}) {
    ASSERT_TRUE(d.Attempt(&c, m).ok()) << m.command.ShortDebugString();
  }
  std::string why;
  ASSERT_TRUE(WaitQuiet(fed, kConverge, &why)) << why;
  // A backlog on the township's link: the cable is cut while the street whistles again
  // and again (each an envelope for the county, to relay to the city).
  fed.proxy("dwk-s01")->Pause();
  ASSERT_TRUE(WaitFor([&] { return !LinkOf(township, "parent").connected(); }, 15s));
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(d.Attempt(&c, StaffDoes(lane.township, [&](auto& x) {
                   x.mutable_whistle()->add_department_ids(police);
                 })).ok());
  }
  fed.proxy("dwk-s01")->Resume();
  // The county's bureau reports in on its own node as soon as the link is back.
  const auto until = Clock::now() + 30s;
  grpc::Status s;
  int tries = 0;
  do {
    ++tries;
    s = d.Attempt(&c, DeskDoes(bureau, [](auto& x) { x.mutable_report_in(); }));
    if (!s.ok()) std::this_thread::sleep_for(2ms);
  } while (!s.ok() && Clock::now() < until);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::printf("[ backlog  ] report_in answered after %d tries at history_length %ld\n", tries,
              static_cast<long>(c.history_length()));
  ASSERT_TRUE(WaitQuiet(fed, kConverge, &why)) << why;
  ExpectSameEverywhere(township, {&county, &city}, c.id());
  ExpectConsistent(fed, ledger);
}

// 7. Minimal reproduction, run by hand: the last envelope's ack is not dropped. The
// sender's writer counted an envelope as sent only after writing it; an ack read in
// between was taken for "something never sent" and dropped, and with nothing more to
// send the outbox stayed unacknowledged (depth 1) until the next reconnect. Needs CPU
// contention: `yes >/dev/null & yes >/dev/null &`, then
// `federation_fault_test --gtest_also_run_disabled_tests --gtest_filter='*LastAck*'`
// (before the fix in link/session.cc Pump: 3 of 40 escalations stayed unacknowledged).
TEST_F(FederationFaultTest, DISABLED_LastAckIsNotDroppedUnderCpuLoad) {
  LocalFederation fed(LocalFederation::ThreeLevel("dwk-s01"));
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); }, 30s)) << fed.Describe();
  Ledger ledger;
  Driver d(fed, ledger, "a0", 3);
  Lane lane = MakeLane("dwk-s01", 0, "dwk", "a0");
  auto& township = fed.NodeHosting(lane.township);
  const int n = 40;
  int stuck = 0;
  for (int i = 0; i < n; ++i) {
    v1::Case c;
    ASSERT_TRUE(d.NewCase(lane, v1::SEVERITY_GENERAL, Clock::now() + 30s, &c));
    ASSERT_NO_FATAL_FAILURE(ToCounty(d, &c, lane));
    std::this_thread::sleep_for(1100ms);  // outbox depth is refreshed once a second
    bool drained = WaitFor([&] { return LinkOf(township, "parent").outbox_depth() == 0; }, 3s);
    if (!drained) {
      ++stuck;
      std::printf("stuck after case %d: %s\n", i, LinkLine(township, "parent").c_str());
    }
  }
  std::printf("[ ackrace  ] %d of %d escalations left the outbox unacknowledged for 4 s\n", stuck,
              n);
  EXPECT_EQ(stuck, 0);
}

}  // namespace
}  // namespace whistle::testing
