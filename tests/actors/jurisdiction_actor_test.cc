// The jurisdiction actor, message by message: forwarding after a hand-over,
// hand-over ordering, pipelined transitions, report idempotency and the
// eviction of settled cases. See actor_fixture.h for how the store's answer
// thread is kept off the deterministic scheduler.
#include <string>
#include <vector>

#include "tests/actors/actor_fixture.h"

namespace whistle::actors::testing {
namespace {

using K = v1::TransitionKind;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---- Forwarding after a hand-over ----

// The community escalates a case to its township; a command that still
// reaches the community (routed by a store read made before the escalation
// was written) is forwarded along the `moved` entry, arrives after the
// hand-over, and succeeds at the township.
TEST_F(ActorTest, ForwardsToTheNewOwnerWhileTheHandoverIsInFlight) {
  const v1::Case c = AcceptedCase();
  const caf::actor community = J(kCommunity);
  const caf::actor street = J(kStreet);

  AnswerPtr escalated = Send(community, c.id(), community_staff_, Escalate());
  ASSERT_TRUE(ExpectRequest(community, "escalate at the community"));
  AnswerPtr whistled = Send(community, c.id(), street_staff_, Whistle({kPolice}));
  ASSERT_TRUE(ExpectRequest(community, "whistle at the old owner"));
  EXPECT_FALSE(Pending(community));

  auto handover = ExpectHandover(street, community, "the hand-over reaches the township first");
  ASSERT_TRUE(handover);
  EXPECT_EQ(handover->value.id(), c.id());
  EXPECT_EQ(handover->value.owner_id(), kStreet);
  EXPECT_EQ(handover->value.state(), v1::CASE_STATE_ACCEPTED);
  auto forwarded = ExpectRequest(street, "then the forwarded whistle");
  ASSERT_TRUE(forwarded);
  EXPECT_EQ(forwarded->hops, 1);
  EXPECT_EQ(forwarded->case_id, c.id());
  EXPECT_TRUE(forwarded->command.has_whistle());

  // Applied in memory; nobody is answered before the store acknowledges.
  EXPECT_EQ(escalated->count(), 0u);
  EXPECT_EQ(whistled->count(), 0u);

  Settle();
  v1::Case e = Ok(escalated);
  EXPECT_EQ(e.owner_id(), kStreet);
  EXPECT_EQ(e.escalations(), 1);
  v1::Case w = Ok(whistled);
  EXPECT_EQ(w.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(w.owner_id(), kStreet);
  ASSERT_EQ(w.summons_size(), 1);
  EXPECT_EQ(w.summons(0).department_id(), kPolice);
  EXPECT_EQ(answer_log(), (std::vector<std::string>{"0", "1", escalated->label, whistled->label}));

  EXPECT_EQ(Stored(c.id()).SerializeAsString(), w.SerializeAsString());
  EXPECT_EQ(Kinds(c.id()),
            (std::vector<K>{v1::TRANSITION_KIND_REPORT, v1::TRANSITION_KIND_ACCEPT,
                            v1::TRANSITION_KIND_ESCALATE, v1::TRANSITION_KIND_WHISTLE}));
  EXPECT_EQ(ctx_->CountsOf(kStreet)[v1::CASE_STATE_IN_PROGRESS], 1);
  for (int64_t n : ctx_->CountsOf(kCommunity)) EXPECT_EQ(n, 0);
  EXPECT_EQ(InMemory(), 1);  // at the township only
}

// Once the hand-over is durable the old owner keeps nothing: it reads the
// owner from the store and forwards.
TEST_F(ActorTest, ForwardsToTheNewOwnerOnceTheHandoverIsDurable) {
  const v1::Case c = AcceptedCase();
  const caf::actor community = J(kCommunity);
  const caf::actor street = J(kStreet);
  AnswerPtr escalated = Send(community, c.id(), community_staff_, Escalate());
  Run();
  Settle();
  ASSERT_EQ(Ok(escalated).owner_id(), kStreet);
  ASSERT_EQ(Stored(c.id()).owner_id(), kStreet);

  AnswerPtr whistled = Send(community, c.id(), street_staff_, Whistle({kPolice, kJudicial}));
  ASSERT_TRUE(ExpectRequest(community, "whistle at the old owner"));
  auto forwarded = ExpectRequest(street, "forwarded to the township");
  ASSERT_TRUE(forwarded);
  EXPECT_EQ(forwarded->hops, 1);
  Settle();
  v1::Case w = Ok(whistled);
  EXPECT_EQ(w.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(w.summons_size(), 2);
  EXPECT_EQ(Stored(c.id()).state(), v1::CASE_STATE_IN_PROGRESS);
}

// Two escalations in flight: the command travels community -> township ->
// county along the `moved` entries, one hop each; once durable the
// community forwards straight to the county.
TEST_F(ActorTest, ForwardingFollowsEveryMoveUpTheTree) {
  const v1::Case c = AcceptedCase();
  const caf::actor community = J(kCommunity);
  const caf::actor street = J(kStreet);
  const caf::actor county = J(kCounty);

  AnswerPtr to_street = Send(community, c.id(), community_staff_, Escalate("需街道协调"));
  Run();
  // Sent to the community again: forwarded, then escalated by the township.
  AnswerPtr to_county = Send(community, c.id(), street_staff_, Escalate("需区里协调"));
  Run();
  EXPECT_EQ(to_street->count() + to_county->count(), 0u);

  AnswerPtr kept = Send(community, c.id(), county_leader_, Keep());
  auto at_community = ExpectRequest(community, "keep at the first owner");
  ASSERT_TRUE(at_community);
  EXPECT_EQ(at_community->hops, 0);
  auto at_street = ExpectRequest(street, "keep at the second owner");
  ASSERT_TRUE(at_street);
  EXPECT_EQ(at_street->hops, 1);
  auto at_county = ExpectRequest(county, "keep at the owner");
  ASSERT_TRUE(at_county);
  EXPECT_EQ(at_county->hops, 2);
  EXPECT_EQ(Run(), 0u);

  Settle();
  EXPECT_EQ(Ok(to_street).owner_id(), kStreet);
  EXPECT_EQ(Ok(to_county).owner_id(), kCounty);
  v1::Case k = Ok(kept);
  EXPECT_EQ(k.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(k.owner_id(), kCounty);
  EXPECT_EQ(k.escalations(), 2);
  EXPECT_EQ(Kinds(c.id()),
            (std::vector<K>{v1::TRANSITION_KIND_REPORT, v1::TRANSITION_KIND_ACCEPT,
                            v1::TRANSITION_KIND_ESCALATE, v1::TRANSITION_KIND_ESCALATE,
                            v1::TRANSITION_KIND_KEEP}));

  // Durable now: the community forwards by the store, straight to the county.
  AnswerPtr whistled = Send(community, c.id(), county_leader_, Whistle({"dwk-public_security"}));
  ASSERT_TRUE(ExpectRequest(community, "whistle at the first owner"));
  auto direct = ExpectRequest(county, "whistle at the county");
  ASSERT_TRUE(direct);
  EXPECT_EQ(direct->hops, 1);
  EXPECT_FALSE(Pending(street));
  Settle();
  EXPECT_EQ(Ok(whistled).summons_size(), 1);
  EXPECT_EQ(InMemory(), 1);
}

// A request forwarded 16 times already is refused instead of forwarded again.
TEST_F(ActorTest, ForwardingGivesUpAfterSixteenHops) {
  const v1::Case c = AcceptedCase();
  const caf::actor community = J(kCommunity);
  AnswerPtr escalated = Send(community, c.id(), community_staff_, Escalate());
  ASSERT_TRUE(ExpectRequest(community, "escalate"));

  AnswerPtr tired = Send(community, c.id(), street_staff_, Whistle({kPolice}), /*hops=*/16);
  ASSERT_TRUE(ExpectRequest(community, "a request that has travelled too far"));
  // Answered at once, not forwarded.
  ASSERT_EQ(tired->count(), 1u);
  auto refused = Result(tired);
  EXPECT_EQ(refused.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(refused.status().message(), "changing owner; retry"))
      << refused.status().message();

  AnswerPtr last = Send(community, c.id(), street_staff_, Whistle({kPolice}), /*hops=*/15);
  Run();
  Settle();
  Ok(escalated);
  EXPECT_EQ(Ok(last).state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(Kinds(c.id()),
            (std::vector<K>{v1::TRANSITION_KIND_REPORT, v1::TRANSITION_KIND_ACCEPT,
                            v1::TRANSITION_KIND_ESCALATE, v1::TRANSITION_KIND_WHISTLE}));
}

// ---- Hand-over ordering ----

// docs/architecture.md, "Who owns a case". The old owner queues the batch
// naming the new owner, then sends the hand-over, within one message. A
// request routed after that message was handled (here: once the escalation
// is durable and answered, by a store read that sees the new owner) lands
// behind the hand-over in the new owner's mailbox.
TEST_F(ActorTest, HandoverIsHandledBeforeARequestRoutedAfterIt) {
  const v1::Case c = AcceptedCase();
  const caf::actor community = J(kCommunity);
  const caf::actor street = J(kStreet);

  AnswerPtr escalated = Send(community, c.id(), community_staff_, Escalate());
  ASSERT_TRUE(ExpectRequest(community, "escalate"));
  EXPECT_TRUE(Pending(street));  // the hand-over, not handled yet
  Durable();                     // the escalation is durable and answered
  EXPECT_EQ(Ok(escalated).owner_id(), kStreet);
  ASSERT_EQ(Stored(c.id()).owner_id(), kStreet);

  // Routed by the store: straight to the township, which has not run since.
  AnswerPtr whistled = Route(c.id(), street_staff_, Whistle({kPolice}));
  auto handover = ExpectHandover(street, community, "the hand-over comes first");
  ASSERT_TRUE(handover);
  EXPECT_EQ(handover->value.owner_id(), kStreet);
  auto routed = ExpectRequest(street, "then the routed request");
  ASSERT_TRUE(routed);
  EXPECT_EQ(routed->hops, 0);
  EXPECT_TRUE(routed->command.has_whistle());

  Settle();
  v1::Case w = Ok(whistled);
  EXPECT_EQ(w.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(w.history_length(), 4);
}

// The new owner runs in the middle of the old owner's message, right when
// the hand-over makes it ready (as another scheduler thread could), and
// commits a transition of its own at once. Its batch still follows the
// escalation's in the store's FIFO: the hand-over goes out only after that
// batch is queued. So the store ends at the new owner's state and the
// answers come back in the order the transitions were applied.
TEST_F(ActorTest, NewOwnersBatchesFollowTheHandoverBatch) {
  const v1::Case c = AcceptedCase();
  const caf::actor community = J(kCommunity);
  const caf::actor street = J(kStreet);

  AnswerPtr escalated = Send(community, c.id(), community_staff_, Escalate());
  AnswerPtr whistled;
  bool inside = RunOnceInterleaved(community, [&] {
    // The community is still in its escalate handler.
    sched().run_once_lifo();  // the township takes the hand-over
    whistled = Send(street, c.id(), street_staff_, Whistle({kPolice}));
    sched().run_once_lifo();  // and whistles: its batch is queued now
  });
  ASSERT_TRUE(inside) << "the escalation made no actor ready";
  ASSERT_TRUE(whistled);
  Run();
  Settle();
  EXPECT_EQ(Ok(escalated).owner_id(), kStreet);
  v1::Case w = Ok(whistled);
  EXPECT_EQ(w.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(w.history_length(), 4);
  std::vector<std::string> log = answer_log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[2], escalated->label);
  EXPECT_EQ(log[3], whistled->label);
  v1::Case stored = Stored(c.id());
  EXPECT_EQ(stored.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(stored.history_length(), 4);
  EXPECT_EQ(stored.SerializeAsString(), w.SerializeAsString());
}

// The other side of sending the hand-over after the batch: a request routed
// by a store read that already sees the new owner can reach it before the
// hand-over message. It loads the case from the store; the late hand-over
// then changes nothing (it never replaces a copy with a longer history).
TEST_F(ActorTest, ALateHandoverNeverReplacesANewerCopy) {
  const v1::Case c = AcceptedCase();
  const caf::actor street = J(kStreet);

  // The escalation is written (the community's batch), its hand-over
  // message still on the way.
  auto escalate = core::CheckCommand(community_staff_, Escalate(), ctx_->core());
  ASSERT_TRUE(escalate.ok()) << escalate.status().ToString();
  auto t = core::Apply(c, *escalate, ctx_->NowMs(), ctx_->core());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->next.owner_id(), kStreet);
  storage::Batch batch;
  batch.RecordTransition(&c, t->next, t->entry);
  CommitBehind(std::move(batch));

  // Routed by the store: the township loads the case and whistles.
  AnswerPtr whistled = Route(c.id(), street_staff_, Whistle({kPolice}));
  ASSERT_TRUE(ExpectRequest(street, "the routed whistle, before the hand-over"));
  // The hand-over arrives late, with the escalated case (history 3 < 4).
  caf::anon_send(street, handover_atom::value, Handover{t->next});
  ASSERT_TRUE((Expect<handover_atom, Handover>(street, nullptr, "the late hand-over")));
  // The next command applies on top of the whistle.
  AnswerPtr reported_in = Send(street, c.id(), police_, ReportIn());
  ASSERT_TRUE(ExpectRequest(street, "report-in"));
  Run();
  Settle();
  EXPECT_EQ(Ok(whistled).history_length(), 4);
  v1::Case r = Ok(reported_in);
  EXPECT_EQ(r.history_length(), 5);
  ASSERT_EQ(r.summons_size(), 1);
  EXPECT_GT(r.summons(0).reported_in_at_ms(), 0);

  // A hand-over as long as the copy here does not replace it either.
  v1::Case same_length = r;
  same_length.set_text("a copy that is not newer");
  caf::anon_send(street, handover_atom::value, Handover{same_length});
  Run();
  AnswerPtr resolved = Send(street, c.id(), street_staff_, Resolve());
  Run();
  Settle();
  v1::Case done = Ok(resolved);
  EXPECT_EQ(done.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_EQ(done.text(), c.text());
  EXPECT_EQ(Kinds(c.id()),
            (std::vector<K>{v1::TRANSITION_KIND_REPORT, v1::TRANSITION_KIND_ACCEPT,
                            v1::TRANSITION_KIND_ESCALATE, v1::TRANSITION_KIND_WHISTLE,
                            v1::TRANSITION_KIND_REPORT_IN, v1::TRANSITION_KIND_RESOLVE}));
}

// A command loads the case from the store before its hand-over message
// arrives and moves it on (escalates to the county). The late hand-over must
// not bring that copy back: the next command goes to the county and applies
// on top of the escalation, never as a second transition with the same seq.
TEST_F(ActorTest, ALateHandoverOfACaseMovedOnIsNotBroughtBack) {
  const v1::Case c = AcceptedCase();
  const caf::actor street = J(kStreet);

  auto escalate = core::CheckCommand(community_staff_, Escalate(), ctx_->core());
  ASSERT_TRUE(escalate.ok()) << escalate.status().ToString();
  auto t = core::Apply(c, *escalate, ctx_->NowMs(), ctx_->core());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->next.owner_id(), kStreet);
  storage::Batch batch;
  batch.RecordTransition(&c, t->next, t->entry);
  CommitBehind(std::move(batch));

  // Routed by the store: the township loads the case and escalates it on.
  AnswerPtr up = Route(c.id(), street_staff_, Escalate("县里牵头"));
  ASSERT_TRUE(ExpectRequest(street, "the routed escalation, before the hand-over"));
  caf::anon_send(street, handover_atom::value, Handover{t->next});
  ASSERT_TRUE((Expect<handover_atom, Handover>(street, nullptr, "the late hand-over")));
  Run();
  Settle();
  ASSERT_EQ(Ok(up).owner_id(), kCounty);

  // Once more after the escalation is durable: the late copy stays out.
  caf::anon_send(street, handover_atom::value, Handover{t->next});
  Run();
  AnswerPtr whistled = Send(street, c.id(), county_leader_, Whistle({kPolice}));
  Run();
  Settle();
  v1::Case w = Ok(whistled);
  EXPECT_EQ(w.owner_id(), kCounty);
  EXPECT_EQ(w.history_length(), 5);
  EXPECT_EQ(Kinds(c.id()),
            (std::vector<K>{v1::TRANSITION_KIND_REPORT, v1::TRANSITION_KIND_ACCEPT,
                            v1::TRANSITION_KIND_ESCALATE, v1::TRANSITION_KIND_ESCALATE,
                            v1::TRANSITION_KIND_WHISTLE}));
}

// The hand-over carries the case as the old owner applied it, ahead of
// what was acknowledged: transitions pipeline across the move, apply on top
// of each other and are answered (and written) in the order applied.
TEST_F(ActorTest, PipelinedTransitionsFollowTheCaseAcrossTheHandover) {
  const v1::Case c = AcceptedCase();
  const caf::actor community = J(kCommunity);
  const caf::actor street = J(kStreet);

  AnswerPtr escalated = Send(community, c.id(), community_staff_, Escalate());
  AnswerPtr whistled = Send(community, c.id(), street_staff_, Whistle({kPolice, kJudicial}));
  Run();
  // The police report in through the old owner (a route read before the
  // escalation was written): forwarded, and applied on the township's
  // memory, which has the summons nobody has been told about yet.
  AnswerPtr reported_in = Send(community, c.id(), police_, ReportIn());
  ASSERT_TRUE(ExpectRequest(community, "report-in at the old owner"));
  auto forwarded = ExpectRequest(street, "report-in at the township");
  ASSERT_TRUE(forwarded);
  EXPECT_EQ(forwarded->hops, 1);
  EXPECT_EQ(escalated->count() + whistled->count() + reported_in->count(), 0u);

  Settle();
  Ok(escalated);
  EXPECT_EQ(Ok(whistled).state(), v1::CASE_STATE_IN_PROGRESS);
  v1::Case r = Ok(reported_in);
  ASSERT_EQ(r.summons_size(), 2);
  EXPECT_GT(r.summons(0).reported_in_at_ms(), 0);
  EXPECT_EQ(r.summons(1).reported_in_at_ms(), 0);
  // Answered, and written, in the order applied.
  std::vector<std::string> log = answer_log();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(log.begin() + 2, log.end()),
            (std::vector<std::string>{escalated->label, whistled->label, reported_in->label}));
  EXPECT_EQ(Kinds(c.id()),
            (std::vector<K>{v1::TRANSITION_KIND_REPORT, v1::TRANSITION_KIND_ACCEPT,
                            v1::TRANSITION_KIND_ESCALATE, v1::TRANSITION_KIND_WHISTLE,
                            v1::TRANSITION_KIND_REPORT_IN}));
  EXPECT_EQ(Stored(c.id()).SerializeAsString(), r.SerializeAsString());

  // The department's desk routes by the store, which names the township now.
  AnswerPtr resolved = Send(D(kPolice), c.id(), police_, Resolve());
  ASSERT_TRUE(ExpectRequest(D(kPolice), "resolve at the police desk"));
  auto routed = ExpectRequest(street, "resolve at the township");
  ASSERT_TRUE(routed);
  EXPECT_EQ(routed->hops, 1);  // the desk counts as the first hop
  Settle();
  v1::Case done = Ok(resolved);
  EXPECT_GT(done.summons(0).done_at_ms(), 0);
  EXPECT_EQ(done.state(), v1::CASE_STATE_IN_PROGRESS);  // the judicial office has not finished
}

// ---- Report idempotency ----

TEST_F(ActorTest, RetriedReportInFlightIsAnsweredWithTheFirstCase) {
  const caf::actor community = J(kCommunity);
  AnswerPtr first = SendReport("r1");
  ASSERT_TRUE(ExpectRequest(community, "the report"));
  AnswerPtr retry = SendReport("r1");
  ASSERT_TRUE(ExpectRequest(community, "its retry, the report still in flight"));
  AnswerPtr again = SendReport("r1");
  Run();
  // A retry's answer waits for the first report to be durable.
  EXPECT_EQ(first->count() + retry->count() + again->count(), 0u);

  Settle();
  v1::Case c = Ok(first);
  EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(Ok(retry).id(), c.id());
  EXPECT_EQ(Ok(again).id(), c.id());
  EXPECT_EQ(Ok(retry).SerializeAsString(), c.SerializeAsString());
  EXPECT_EQ(answer_log(), (std::vector<std::string>{first->label, retry->label, again->label}));

  // One case, one history entry, counted once.
  EXPECT_EQ(*ctx_->store().LastCaseSeq("szs"), 1u);
  EXPECT_EQ(Kinds(c.id()), (std::vector<K>{v1::TRANSITION_KIND_REPORT}));
  auto listed = ctx_->store().ListByOwner(kCommunity, v1::CASE_STATE_UNSPECIFIED, "", 10);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->cases.size(), 1u);
  EXPECT_EQ(ctx_->CountsOf(kCommunity)[v1::CASE_STATE_REPORTED], 1);

  // Another request id, or another user with the same id, is a new report.
  AnswerPtr other = SendReport("r2");
  AnswerPtr stranger =
      SendReport("r1", whistle::testing::MakeCaller("li.grid", v1::ROLE_GRID_WORKER, kGrid));
  Run();
  Settle();
  EXPECT_NE(Ok(other).id(), c.id());
  EXPECT_NE(Ok(stranger).id(), c.id());
  EXPECT_NE(Ok(stranger).id(), Ok(other).id());
  EXPECT_EQ(*ctx_->store().LastCaseSeq("szs"), 3u);
}

TEST_F(ActorTest, RetriedReportAfterItIsDurableIsAnsweredWithTheFirstCase) {
  const caf::actor community = J(kCommunity);
  AnswerPtr first = SendReport("r1");
  Run();
  Settle();  // durable, and the actor has forgotten the request
  v1::Case c = Ok(first);

  AnswerPtr retry = SendReport("r1");
  Run();
  Settle();
  EXPECT_EQ(Ok(retry).SerializeAsString(), c.SerializeAsString());

  // After the case moved on (accepted, escalated away from the community
  // the report is routed to): the same case, as it is now.
  AnswerPtr accepted = Send(community, c.id(), community_staff_, Accept());
  Run();
  Settle();
  Ok(accepted);
  AnswerPtr escalated = Send(community, c.id(), community_staff_, Escalate());
  Run();
  Settle();
  Ok(escalated);
  AnswerPtr late = SendReport("r1");
  Run();
  Settle();
  v1::Case now = Ok(late);
  EXPECT_EQ(now.id(), c.id());
  EXPECT_EQ(now.owner_id(), kStreet);
  EXPECT_EQ(now.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_EQ(*ctx_->store().LastCaseSeq("szs"), 1u);
  EXPECT_EQ(Kinds(c.id()), (std::vector<K>{v1::TRANSITION_KIND_REPORT, v1::TRANSITION_KIND_ACCEPT,
                                           v1::TRANSITION_KIND_ESCALATE}));
}

// ---- Eviction of settled cases ----

TEST_F(ActorTest, SettledCaseLeavesMemoryAndIsReadFromTheStoreAgain) {
  const caf::actor community = J(kCommunity);
  const v1::Case c = AcceptedCase();
  EXPECT_EQ(InMemory(), 1);
  for (const auto& [command, caller] :
       std::vector<std::pair<v1::Command, v1::Caller>>{{Keep(), community_staff_},
                                                       {Resolve(), community_staff_},
                                                       {Verify(true), grid_worker_}}) {
    AnswerPtr a = Send(community, c.id(), caller, command);
    Run();
    Settle();
    Ok(a);
  }
  EXPECT_EQ(Stored(c.id()).state(), v1::CASE_STATE_VERIFIED);
  EXPECT_EQ(InMemory(), 1);

  AnswerPtr closed = Send(community, c.id(), community_staff_, Close());
  Run();
  EXPECT_EQ(InMemory(), 1);  // closed in memory, still in flight
  Settle();
  EXPECT_EQ(Ok(closed).state(), v1::CASE_STATE_CLOSED);
  EXPECT_EQ(InMemory(), 0);  // settled and durable: gone from memory

  // Reads are the store's, which has it all.
  v1::Case stored = Stored(c.id());
  EXPECT_EQ(stored.state(), v1::CASE_STATE_CLOSED);
  EXPECT_EQ(Kinds(c.id()).size(), 6u);

  // The next command loads it from the store: an edit made behind the
  // actor's back shows in the answer.
  Tamper(c.id(), "改过的记录");
  AnswerPtr evaluated = Send(community, c.id(), grid_worker_, Evaluate(5));
  Run();
  EXPECT_EQ(InMemory(), 1);  // loaded; in flight
  Settle();
  v1::Case e = Ok(evaluated);
  EXPECT_EQ(e.state(), v1::CASE_STATE_EVALUATED);
  EXPECT_EQ(e.satisfaction(), 5);
  EXPECT_EQ(e.text(), "改过的记录");
  EXPECT_EQ(InMemory(), 0);
  EXPECT_EQ(Stored(c.id()).state(), v1::CASE_STATE_EVALUATED);
}

// The control for the test above: an open case is served from memory, so
// the same edit behind the actor's back does not show (and is overwritten).
TEST_F(ActorTest, OpenCaseIsServedFromMemory) {
  const caf::actor community = J(kCommunity);
  const v1::Case c = AcceptedCase();
  Tamper(c.id(), "改过的记录");
  AnswerPtr kept = Send(community, c.id(), community_staff_, Keep());
  Run();
  Settle();
  v1::Case k = Ok(kept);
  EXPECT_EQ(k.text(), c.text());
  EXPECT_EQ(Stored(c.id()).text(), c.text());
  EXPECT_EQ(InMemory(), 1);
}

// Pipelined close and evaluate: the case stays until the last of its
// commits is known durable.
TEST_F(ActorTest, EvictionWaitsForEveryCommitInFlight) {
  const caf::actor community = J(kCommunity);
  const v1::Case c = AcceptedCase();
  for (const auto& [command, caller] :
       std::vector<std::pair<v1::Command, v1::Caller>>{{Keep(), community_staff_},
                                                       {Resolve(), community_staff_},
                                                       {Verify(true), grid_worker_}}) {
    AnswerPtr a = Send(community, c.id(), caller, command);
    Run();
    Settle();
    Ok(a);
  }

  AnswerPtr closed = Send(community, c.id(), community_staff_, Close());
  AnswerPtr evaluated = Send(community, c.id(), grid_worker_, Evaluate(4));
  Run();
  Durable();  // both durable and answered; the actor has not heard yet
  EXPECT_EQ(Ok(closed).state(), v1::CASE_STATE_CLOSED);
  EXPECT_EQ(Ok(evaluated).state(), v1::CASE_STATE_EVALUATED);
  EXPECT_EQ(InMemory(), 1);

  auto first = ExpectCommitted(community, "the close is durable");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->case_id, c.id());
  EXPECT_EQ(InMemory(), 1);  // the evaluation is still in flight
  auto second = ExpectCommitted(community, "the evaluation is durable");
  ASSERT_TRUE(second);
  EXPECT_EQ(InMemory(), 0);
  EXPECT_FALSE(Pending(community));
}

TEST_F(ActorTest, RefusedCommandOnASettledCaseLeavesNothingInMemory) {
  const caf::actor community = J(kCommunity);
  AnswerPtr reported = SendReport("r1");
  Run();
  Settle();
  const v1::Case c = Ok(reported);
  AnswerPtr rejected = Send(community, c.id(), community_staff_, Reject());
  Run();
  Settle();
  EXPECT_EQ(Ok(rejected).state(), v1::CASE_STATE_REJECTED);
  EXPECT_EQ(InMemory(), 0);

  // Loaded from the store, refused by the state machine, dropped again; the
  // refusal is answered at once (nothing to make durable).
  AnswerPtr accept = Send(community, c.id(), community_staff_, Accept());
  Run();
  ASSERT_EQ(accept->count(), 1u);
  auto refused = Result(accept);
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(refused.status().message(), "CASE_STATE_REJECTED"))
      << refused.status().message();
  EXPECT_EQ(InMemory(), 0);
  EXPECT_EQ(Kinds(c.id()).size(), 2u);

  // Unknown cases: NOT_FOUND, whether sent to an actor or routed.
  auto sent = Send(community, "szs-000000000099", community_staff_, Accept());
  auto routed = Route("szs-000000000099", community_staff_, Accept());
  Run();
  EXPECT_EQ(Result(sent).status().code(), Code::kNotFound);
  EXPECT_EQ(Result(routed).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace whistle::actors::testing
