#include "actors/directive_probe.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>

#include "actors/probe.h"

namespace whistle::actors {

namespace {

// Index 0 (LEVEL_UNSPECIFIED) stands for departments.
std::string UnitLevelLabel(int level) {
  return level == 0 ? "department" : LevelLabel(static_cast<v1::Level>(level));
}

int Slot(v1::Level level) { return v1::Level_IsValid(level) ? static_cast<int>(level) : 0; }

}  // namespace

struct DirectiveProbe::Impl {
  std::array<prometheus::Gauge*, v1::Level_ARRAYSIZE> open{};
  std::array<prometheus::Counter*, v1::Level_ARRAYSIZE> issued{};
  std::array<std::array<prometheus::Counter*, 2>, v1::Level_ARRAYSIZE> signed_{};
  std::array<std::array<prometheus::Counter*, 2>, v1::Level_ARRAYSIZE> done{};
  prometheus::Histogram* expansion = nullptr;
  prometheus::Histogram* fanout = nullptr;
  prometheus::Histogram* aggregation = nullptr;
  prometheus::Counter* updates_received = nullptr;
  prometheus::Counter* updates_sent = nullptr;
  prometheus::Gauge* unsent = nullptr;
};

DirectiveProbe::DirectiveProbe(prometheus::Registry* registry) {
  if (registry == nullptr) return;
  impl_ = std::make_unique<Impl>();
  auto& open = prometheus::BuildGauge()
                   .Name("whistle_directives_open")
                   .Help("Active (not cancelled) directives issued on this node, by issuer level.")
                   .Register(*registry);
  auto& issued = prometheus::BuildCounter()
                     .Name("whistle_directive_receipts_issued_total")
                     .Help("Receipts written on this node (one per target unit), by unit level.")
                     .Register(*registry);
  auto& signed_ = prometheus::BuildCounter()
                      .Name("whistle_directive_receipts_signed_total")
                      .Help(
                          "Receipts signed for (签收) on this node, by unit level and whether "
                          "after the deadline; completing an unsigned receipt signs it too.")
                      .Register(*registry);
  auto& done = prometheus::BuildCounter()
                   .Name("whistle_directive_receipts_done_total")
                   .Help(
                       "Receipts reported done (反馈) on this node, by unit level and whether "
                       "after the deadline.")
                   .Register(*registry);
  for (int level = 0; level < v1::Level_ARRAYSIZE; ++level) {
    const std::string label = UnitLevelLabel(level);
    if (level != 0) impl_->open[level] = &open.Add({{"level", label}});
    impl_->issued[level] = &issued.Add({{"level", label}});
    for (int late = 0; late < 2; ++late) {
      const std::string l = late ? "true" : "false";
      impl_->signed_[level][late] = &signed_.Add({{"level", label}, {"late", l}});
      impl_->done[level][late] = &done.Add({{"level", label}, {"late", l}});
    }
  }
  impl_->expansion = &prometheus::BuildHistogram()
                          .Name("whistle_directive_expansion_seconds")
                          .Help(
                              "Time from an Issue reaching the directive actor until every "
                              "receipt and count on this node was durable.")
                          .Register(*registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{
                                       0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  const prometheus::Histogram::BucketBoundaries link_buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1,    2.5,   5,    10,  30};
  impl_->fanout = &prometheus::BuildHistogram()
                       .Name("whistle_directive_fanout_seconds")
                       .Help(
                           "Time from a directive's issue (or amend) at the issuing node until "
                           "this node stored it from its parent link.")
                       .Register(*registry)
                       .Add({}, link_buckets);
  impl_->aggregation = &prometheus::BuildHistogram()
                            .Name("whistle_directive_aggregation_seconds")
                            .Help(
                                "Time from a child node writing a directive count update to "
                                "its outbox until this node merged it.")
                            .Register(*registry)
                            .Add({}, link_buckets);
  impl_->updates_received =
      &prometheus::BuildCounter()
           .Name("whistle_directive_count_updates_received_total")
           .Help("Directive count updates (coalesced, per child node) merged from child nodes.")
           .Register(*registry)
           .Add({});
  impl_->updates_sent = &prometheus::BuildCounter()
                             .Name("whistle_directive_count_updates_sent_total")
                             .Help("Directive count updates written to the parent link's outbox.")
                             .Register(*registry)
                             .Add({});
  impl_->unsent = &prometheus::BuildGauge()
                       .Name("whistle_directive_counts_unsent_since_seconds")
                       .Help(
                           "Unix time of the oldest directive count change on this node not "
                           "yet written to the parent link's outbox; 0 when none.")
                       .Register(*registry)
                       .Add({});
}

DirectiveProbe::~DirectiveProbe() = default;

void DirectiveProbe::OpenDelta(v1::Level level, double delta) {
  if (!impl_ || Slot(level) == 0) return;
  impl_->open[Slot(level)]->Increment(delta);
}

void DirectiveProbe::ReceiptsIssued(v1::Level unit_level, double n) {
  if (!impl_) return;
  impl_->issued[Slot(unit_level)]->Increment(n);
}

void DirectiveProbe::Signed(v1::Level unit_level, bool late) {
  if (!impl_) return;
  impl_->signed_[Slot(unit_level)][late ? 1 : 0]->Increment();
}

void DirectiveProbe::Done(v1::Level unit_level, bool late) {
  if (!impl_) return;
  impl_->done[Slot(unit_level)][late ? 1 : 0]->Increment();
}

void DirectiveProbe::ExpansionLatency(double seconds) {
  if (!impl_) return;
  impl_->expansion->Observe(seconds);
}

void DirectiveProbe::FanoutLatency(double seconds) {
  if (!impl_) return;
  impl_->fanout->Observe(seconds < 0 ? 0 : seconds);
}

void DirectiveProbe::CountUpdateApplied(double seconds) {
  if (!impl_) return;
  impl_->aggregation->Observe(seconds < 0 ? 0 : seconds);
  impl_->updates_received->Increment();
}

void DirectiveProbe::CountsUnsentSince(double unix_seconds) {
  if (!impl_) return;
  impl_->unsent->Set(unix_seconds);
}

void DirectiveProbe::CountUpdatesSent(double n) {
  if (!impl_) return;
  impl_->updates_sent->Increment(n);
}

}  // namespace whistle::actors
