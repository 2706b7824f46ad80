// DirectiveProbe: the directive metrics of one node, registered in one place
// with help text. Labels are bounded: the level of a unit (city .. grid, or
// "department"), never a unit or directive id. Every series exists from the
// start (zero), so a dashboard rate() has data before the first directive.
// Thread-safe; called from the commit answer thread.
#pragma once

#include <memory>

#include "whistle/v1/common.pb.h"

namespace prometheus {
class Registry;
}

namespace whistle::actors {

// A unit's level: its jurisdiction's level, or LEVEL_UNSPECIFIED for a
// department (labelled "department").
class DirectiveProbe {
 public:
  // `registry` may be null: the probe then records nothing.
  explicit DirectiveProbe(prometheus::Registry* registry);
  ~DirectiveProbe();

  // An active directive issued at `level` appeared (+1) or was cancelled (-1).
  void OpenDelta(v1::Level level, double delta);
  void ReceiptsIssued(v1::Level unit_level, double n);
  void Signed(v1::Level unit_level, bool late);
  void Done(v1::Level unit_level, bool late);
  // Seconds from the Issue call reaching the actor until every receipt and
  // count of this node was durable.
  void ExpansionLatency(double seconds);
  // Federation. Seconds from the issue at the issuing node until this node
  // stored a directive that came down its parent link (clocks of two nodes).
  void FanoutLatency(double seconds);
  // Seconds from a child node writing a count update to its outbox until
  // this node applied it; and one update applied (coalesced: one per child
  // and directive per flush, not one per unit).
  void CountUpdateApplied(double seconds);
  // Unix time of the oldest count change not yet written to the parent's
  // outbox; 0 when none. Reset every flush (25 ms): an old value is a stall.
  void CountsUnsentSince(double unix_seconds);
  // Count updates written to the parent's outbox.
  void CountUpdatesSent(double n);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace whistle::actors
