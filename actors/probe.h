// CaseProbe: the case-flow metrics of one node, registered in one place with
// help text. Thread-safe (prometheus-cpp families lock internally); called
// from actor and commit threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "whistle/v1/case.pb.h"
#include "whistle/v1/common.pb.h"

namespace prometheus {
class Registry;
}

namespace whistle::actors {

// Lower-case label values: "community", "in_progress", "report_in", ...
std::string LevelLabel(v1::Level level);
std::string StateLabel(v1::CaseState state);
std::string KindLabel(v1::TransitionKind kind);
// Top-level part of a category id: "dispute.neighbour" -> "dispute".
std::string CategoryLabel(std::string_view category);

class CaseProbe {
 public:
  // `registry` may be null: the probe then records nothing.
  explicit CaseProbe(prometheus::Registry* registry);
  ~CaseProbe();

  // Creates every series of the bounded case-flow counters (and the open-case
  // gauge) at 0, so rate() sees a series' first event: transitions by kind x
  // level (city..grid) x the top-level parts of `categories`; overdue by level
  // x deadline (accept, dispatch, report_in, resolve, verify); no-shows by
  // level; open cases by level x open state. Call once at start-up.
  void CreateSeries(const std::vector<std::string>& categories);

  void Transition(v1::TransitionKind kind, v1::Level level, std::string_view category);
  void Overdue(v1::Level level, std::string_view deadline);
  void NoShow(v1::Level level);
  // An open case of (level, state) appeared (+1) or went away (-1).
  void OpenDelta(v1::Level level, v1::CaseState state, double delta);
  void InMemoryDelta(double delta);
  // Seconds from handing a transition to the store until it was durable.
  void CommitLatency(double seconds);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace whistle::actors
