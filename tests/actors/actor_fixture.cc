#include "tests/actors/actor_fixture.h"

#include <prometheus/metric_family.h>

namespace whistle::actors::testing {

using namespace std::chrono_literals;

// Jurisdictions with an actor: the escalation path of the test grid. A
// jurisdiction without one would count as hosted elsewhere.
constexpr const char* kHosted[] = {kCommunity, kStreet, kCounty, kCity};

ActorTest::ActorTest() {
  auto topology = core::Topology::Build(core::ShizuishanTopology());
  EXPECT_TRUE(topology.ok()) << topology.status().ToString();
  topology_ = *topology;
  auto policy = core::Policy::Build(core::DefaultPolicy());
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  policy_ = *policy;

  storage::Options options;
  options.path = dir_.path();
  options.init = true;  // a new, empty directory
  auto store = storage::Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  ctx_ = std::make_unique<NodeContext>("szs", topology_, policy_, std::move(store).value(),
                                       &registry_);
  Status loaded = ctx_->Load();
  EXPECT_TRUE(loaded.ok()) << loaded.ToString();
  auto placement = core::Placement::Build(*topology_, "", {}, false);
  EXPECT_TRUE(placement.ok()) << placement.status().ToString();
  ctx_->set_placement(std::move(placement).value());

  // Held before anything is committed: the scheduler may run from now on.
  CloseGate();
  caf_ = std::make_unique<Fixture>();
  for (const char* id : kHosted) {
    ctx_->jurisdictions()[id] = SpawnJurisdiction(caf_->sys, ctx_.get(), id);
  }
  for (const char* id : {kPolice, kJudicial}) {
    ctx_->departments()[id] = SpawnDepartment(caf_->sys, ctx_.get(), id);
  }
  Run();  // the actors' initial behaviours
}

ActorTest::~ActorTest() {
  // Answer everything still queued, let the actors take it in, stop them,
  // and only then close the store and the actor system.
  OpenGate();
  Status drained = ctx_->store().CommitAndWait(storage::Batch{});
  EXPECT_TRUE(drained.ok()) << drained.ToString();
  Run();
  for (auto& [id, a] : ctx_->jurisdictions())
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  for (auto& [id, a] : ctx_->departments()) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  Run();
  ctx_->jurisdictions().clear();
  ctx_->departments().clear();
  ctx_->CloseStore();
  caf_.reset();
  ctx_.reset();
}

namespace {

// The test coordinator's worker, plus a one-shot hook on the first actor a
// handler makes ready.
class HookedUnit final : public caf::execution_unit {
 public:
  HookedUnit(caf::scheduler::test_coordinator& sched, std::function<void()> hook)
      : caf::execution_unit(&sched.system()), sched_(sched), hook_(std::move(hook)) {}

  void exec_later(caf::resumable* job) override {
    sched_.jobs.push_back(job);
    if (hook_) {
      auto hook = std::move(hook_);
      hook_ = nullptr;
      hook();
    }
  }

  bool fired() const { return !hook_; }

 private:
  caf::scheduler::test_coordinator& sched_;
  std::function<void()> hook_;
};

}  // namespace

bool ActorTest::RunOnceInterleaved(const caf::actor& a, std::function<void()> inside) {
  auto& sched = caf_->sched;
  if (!sched.prioritize(a)) {
    ADD_FAILURE() << "no message for " << Name(a);
    return false;
  }
  // test_coordinator::try_run_once, with the hooked worker.
  caf::resumable* job = sched.jobs.front();
  sched.jobs.pop_front();
  HookedUnit unit(sched, std::move(inside));
  switch (job->resume(&unit, 1)) {
    case caf::resumable::resume_later:
      sched.jobs.push_front(job);
      break;
    case caf::resumable::done:
    case caf::resumable::awaiting_message:
      caf::intrusive_ptr_release(job);
      break;
    case caf::resumable::shutdown_execution_unit:
      break;
  }
  return unit.fired();
}

void ActorTest::CloseGate() {
  gate_ = std::make_shared<Gate>();
  ctx_->store().Commit(storage::Batch{}, [gate = gate_](const Status&) { gate->Wait(); });
}

void ActorTest::OpenGate() {
  if (gate_) gate_->Open();
  gate_.reset();
}

void ActorTest::Durable() {
  OpenGate();
  Status s = ctx_->store().CommitAndWait(storage::Batch{});
  EXPECT_TRUE(s.ok()) << s.ToString();
  CloseGate();
}

std::string ActorTest::Name(const caf::actor& a) {
  for (const auto& [id, h] : ctx_->jurisdictions()) {
    if (h == a) return "jurisdiction " + id;
  }
  for (const auto& [id, h] : ctx_->departments()) {
    if (h == a) return "department " + id;
  }
  return "an unknown actor";
}

v1::ReportCommand ActorTest::NeighbourDispute(const std::string& request_id) {
  v1::ReportCommand r;
  r.set_request_id(request_id);
  r.set_category("dispute.neighbour");
  r.set_severity(v1::SEVERITY_GENERAL);
  r.mutable_place()->set_grid_id(kGrid);
  r.mutable_place()->set_address("长胜街道 3 号楼");
  r.set_text("楼上漏水, 邻里争吵");
  return r;
}

CaseRequest ActorTest::Request(const v1::Caller& caller, const std::string& case_id,
                               const v1::Command& command, AnswerPtr answer) {
  // As Node::Report / Node::Act build it: checked where it enters the node;
  // a command also travels as received (for routing and forwarding).
  CaseRequest req;
  if (command.has_report()) {
    auto checked = core::CheckReport(caller, command.report(), ctx_->core());
    EXPECT_TRUE(checked.ok()) << checked.status().ToString();
    if (checked.ok()) req.checked = std::move(checked).value();
  } else {
    auto checked = core::CheckCommand(caller, command, ctx_->core());
    EXPECT_TRUE(checked.ok()) << checked.status().ToString();
    if (checked.ok()) req.checked = std::move(checked).value();
    req.caller = caller;
    req.case_id = case_id;
    req.command = command;
  }
  const std::string label = std::to_string(next_label_++);
  answer->label = label;
  req.reply = [this, answer, label](StatusOr<v1::Case> result) {
    {
      std::lock_guard lock(log_mu_);
      answer_log_.push_back(label);
    }
    {
      std::lock_guard lock(answer->mu);
      answer->got.push_back(std::move(result));
    }
    answer->cv.notify_all();
  };
  return req;
}

AnswerPtr ActorTest::SendReport(const std::string& request_id, const v1::Caller& caller) {
  auto answer = std::make_shared<Answer>();
  v1::Command command;
  *command.mutable_report() = NeighbourDispute(request_id);
  auto owner = core::RouteReport(command.report(), ctx_->core());
  EXPECT_TRUE(owner.ok()) << owner.status().ToString();
  EXPECT_EQ(*owner, kCommunity);
  caf::anon_send(J(*owner), case_atom::value, Request(caller, "", command, answer));
  return answer;
}

AnswerPtr ActorTest::Send(const caf::actor& to, const std::string& case_id,
                          const v1::Caller& caller, const v1::Command& command, int hops) {
  auto answer = std::make_shared<Answer>();
  CaseRequest req = Request(caller, case_id, command, answer);
  req.hops = hops;
  caf::anon_send(to, case_atom::value, std::move(req));
  return answer;
}

AnswerPtr ActorTest::Route(const std::string& case_id, const v1::Caller& caller,
                           const v1::Command& command) {
  auto answer = std::make_shared<Answer>();
  ctx_->RouteToOwner(Request(caller, case_id, command, answer));
  return answer;
}

StatusOr<v1::Case> ActorTest::Result(const AnswerPtr& a) {
  std::unique_lock lock(a->mu);
  // Replies are in place after Durable(); the wait only bounds a bug.
  if (!a->cv.wait_for(lock, 10s, [&] { return !a->got.empty(); })) {
    ADD_FAILURE() << "no reply";
    return Status::Internal("no reply");
  }
  EXPECT_EQ(a->got.size(), 1u) << "replied more than once";
  return a->got.front();
}

v1::Case ActorTest::Ok(const AnswerPtr& a) {
  auto r = Result(a);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : v1::Case{};
}

v1::Case ActorTest::AcceptedCase(const std::string& request_id) {
  AnswerPtr reported = SendReport(request_id);
  Run();
  Settle();
  v1::Case c = Ok(reported);
  AnswerPtr accepted = Send(J(kCommunity), c.id(), community_staff_, Accept());
  Run();
  Settle();
  c = Ok(accepted);
  EXPECT_EQ(c.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_EQ(c.owner_id(), kCommunity);
  return c;
}

v1::Case ActorTest::Stored(const std::string& case_id) {
  auto c = ctx_->store().GetCase(case_id);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : v1::Case{};
}

std::vector<v1::TransitionKind> ActorTest::Kinds(const std::string& case_id) {
  std::vector<v1::TransitionKind> kinds;
  auto history = ctx_->store().History(case_id);
  EXPECT_TRUE(history.ok()) << history.status().ToString();
  if (!history.ok()) return kinds;
  for (const auto& e : *history) kinds.push_back(e.kind());
  return kinds;
}

double ActorTest::InMemory() {
  for (const auto& family : registry_.Collect()) {
    if (family.name != "whistle_cases_in_memory") continue;
    double sum = 0;
    for (const auto& m : family.metric) sum += m.gauge.value;
    return sum;
  }
  ADD_FAILURE() << "whistle_cases_in_memory is not registered";
  return -1;
}

void ActorTest::CommitBehind(storage::Batch batch) {
  // Like Durable(): the write waits behind the gate, so it is opened for it.
  OpenGate();
  Status s = ctx_->store().CommitAndWait(std::move(batch));
  EXPECT_TRUE(s.ok()) << s.ToString();
  CloseGate();
}

void ActorTest::Tamper(const std::string& case_id, const std::string& text) {
  v1::Case c = Stored(case_id);
  c.set_text(text);
  storage::Batch batch;
  batch.PutCase(&c, c, true);  // same owner and state: only the record changes
  CommitBehind(std::move(batch));
}

}  // namespace whistle::actors::testing
