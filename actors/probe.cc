#include "actors/probe.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <mutex>
#include <unordered_map>

#include "core/case_machine.h"

namespace whistle::actors {

namespace {

// Strips the enum prefix and lower-cases: CASE_STATE_IN_PROGRESS -> in_progress.
std::string EnumLabel(const std::string& name, std::string_view prefix) {
  std::string out = name.substr(name.rfind(prefix, 0) == 0 ? prefix.size() : 0);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

std::string LevelLabel(v1::Level level) { return EnumLabel(v1::Level_Name(level), "LEVEL_"); }
std::string StateLabel(v1::CaseState state) {
  return EnumLabel(v1::CaseState_Name(state), "CASE_STATE_");
}
std::string KindLabel(v1::TransitionKind kind) {
  return EnumLabel(v1::TransitionKind_Name(kind), "TRANSITION_KIND_");
}
std::string CategoryLabel(std::string_view category) {
  return std::string(category.substr(0, category.find('.')));
}

struct CaseProbe::Impl {
  // Label sets are built once per series: building label maps on every
  // transition cost more than the increment itself.
  std::mutex mu;
  std::unordered_map<std::string, prometheus::Counter*> transition_series;  // guarded by mu
  std::array<std::array<std::atomic<prometheus::Gauge*>, v1::CaseState_ARRAYSIZE>,
             v1::Level_ARRAYSIZE>
      open_series{};

  prometheus::Family<prometheus::Counter>* transitions;
  prometheus::Family<prometheus::Counter>* overdue;
  prometheus::Family<prometheus::Counter>* no_shows;
  prometheus::Family<prometheus::Gauge>* open;
  prometheus::Gauge* in_memory;
  prometheus::Histogram* commit_seconds;
};

CaseProbe::CaseProbe(prometheus::Registry* registry) {
  if (registry == nullptr) return;
  impl_ = std::make_unique<Impl>();
  impl_->transitions = &prometheus::BuildCounter()
                            .Name("whistle_case_transitions_total")
                            .Help(
                                "Durable case transitions by kind, owner level after the "
                                "transition, and top-level category.")
                            .Register(*registry);
  impl_->overdue = &prometheus::BuildCounter()
                        .Name("whistle_case_overdue_total")
                        .Help(
                            "Missed deadlines by owner level and deadline "
                            "(accept, dispatch, report_in, resolve, verify).")
                        .Register(*registry);
  impl_->no_shows = &prometheus::BuildCounter()
                         .Name("whistle_summons_no_show_total")
                         .Help(
                             "Summoned departments that did not report in within the limit, "
                             "by the level of the case owner.")
                         .Register(*registry);
  impl_->open = &prometheus::BuildGauge()
                     .Name("whistle_cases_open")
                     .Help("Open cases by owner level and state.")
                     .Register(*registry);
  impl_->in_memory = &prometheus::BuildGauge()
                          .Name("whistle_cases_in_memory")
                          .Help("Cases held in jurisdiction actors' memory (open or in flight).")
                          .Register(*registry)
                          .Add({});
  impl_->commit_seconds =
      &prometheus::BuildHistogram()
           .Name("whistle_storage_commit_seconds")
           .Help(
               "Time from queueing a transition's batch to its durable commit (group commit "
               "wait + write + WAL sync).")
           .Register(*registry)
           .Add({},
                prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
}

CaseProbe::~CaseProbe() = default;

namespace {

// The deadlines RecordDurable counts a miss of (whistle_case_overdue_total).
constexpr const char* kDeadlines[] = {"accept", "dispatch", "report_in", "resolve", "verify"};

// Key of a transition series in Impl::transition_series.
void TransitionKey(v1::TransitionKind kind, v1::Level level, std::string_view top,
                   std::string* key) {
  key->assign(1, static_cast<char>(kind));
  key->push_back(static_cast<char>(level));
  key->append(top);
}

}  // namespace

void CaseProbe::CreateSeries(const std::vector<std::string>& categories) {
  if (!impl_) return;
  std::vector<std::string> tops;
  for (const auto& c : categories) {
    std::string top = CategoryLabel(c);
    if (std::find(tops.begin(), tops.end(), top) == tops.end()) tops.push_back(top);
  }
  std::string key;
  for (int l = v1::LEVEL_CITY; l <= v1::LEVEL_GRID; ++l) {
    const auto level = static_cast<v1::Level>(l);
    const std::string level_label = LevelLabel(level);
    for (const char* deadline : kDeadlines) {
      impl_->overdue->Add({{"level", level_label}, {"deadline", deadline}});
    }
    impl_->no_shows->Add({{"level", level_label}});
    for (int st = 0; st < v1::CaseState_ARRAYSIZE; ++st) {
      const auto state = static_cast<v1::CaseState>(st);
      if (v1::CaseState_IsValid(st) && core::IsOpen(state)) OpenDelta(level, state, 0);
    }
    std::lock_guard lock(impl_->mu);
    for (int k = v1::TransitionKind_MIN; k <= v1::TransitionKind_MAX; ++k) {
      const auto kind = static_cast<v1::TransitionKind>(k);
      if (kind == v1::TRANSITION_KIND_UNSPECIFIED || !v1::TransitionKind_IsValid(k)) continue;
      for (const auto& top : tops) {
        TransitionKey(kind, level, top, &key);
        auto& slot = impl_->transition_series[key];
        if (slot == nullptr) {
          slot = &impl_->transitions->Add(
              {{"kind", KindLabel(kind)}, {"level", level_label}, {"category", top}});
        }
      }
    }
  }
}

void CaseProbe::Transition(v1::TransitionKind kind, v1::Level level, std::string_view category) {
  if (!impl_) return;
  std::string_view top = category.substr(0, category.find('.'));
  thread_local std::string key;
  TransitionKey(kind, level, top, &key);
  prometheus::Counter* counter = nullptr;
  {
    std::lock_guard lock(impl_->mu);
    auto& slot = impl_->transition_series[key];
    if (slot == nullptr) {
      slot = &impl_->transitions->Add({{"kind", KindLabel(kind)},
                                       {"level", LevelLabel(level)},
                                       {"category", std::string(top)}});
    }
    counter = slot;
  }
  counter->Increment();
}

void CaseProbe::Overdue(v1::Level level, std::string_view deadline) {
  if (!impl_) return;
  impl_->overdue->Add({{"level", LevelLabel(level)}, {"deadline", std::string(deadline)}})
      .Increment();
}

void CaseProbe::NoShow(v1::Level level) {
  if (!impl_) return;
  impl_->no_shows->Add({{"level", LevelLabel(level)}}).Increment();
}

void CaseProbe::OpenDelta(v1::Level level, v1::CaseState state, double delta) {
  if (!impl_ || !v1::Level_IsValid(level) || !v1::CaseState_IsValid(state)) return;
  auto& slot = impl_->open_series[level][state];
  prometheus::Gauge* gauge = slot.load(std::memory_order_acquire);
  if (gauge == nullptr) {
    std::lock_guard lock(impl_->mu);
    gauge = slot.load(std::memory_order_relaxed);
    if (gauge == nullptr) {
      gauge = &impl_->open->Add({{"level", LevelLabel(level)}, {"state", StateLabel(state)}});
      slot.store(gauge, std::memory_order_release);
    }
  }
  gauge->Increment(delta);
}

void CaseProbe::InMemoryDelta(double delta) {
  if (!impl_) return;
  impl_->in_memory->Increment(delta);
}

void CaseProbe::CommitLatency(double seconds) {
  if (!impl_) return;
  impl_->commit_seconds->Observe(seconds);
}

}  // namespace whistle::actors
