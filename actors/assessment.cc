#include "actors/assessment.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "actors/probe.h"
#include "core/log.h"
#include "core/placement.h"
#include "storage/assessment_store.h"

namespace whistle::actors {

namespace {

using core::assessment::Figure;

constexpr size_t kMaxRemembered = 100'000;
constexpr const char* kRef = "a:";
constexpr auto kSendEvery = std::chrono::milliseconds(200);
constexpr size_t kSendBatch = 512;
constexpr int64_t kMaxValue = 1'000'000'000'000LL;

// "a:" <kind> <subject> "|" <day>
std::string RefOf(const storage::AssessmentKey& k) {
  return std::string(kRef) + k.kind + k.subject + "|" + std::to_string(k.day);
}

bool ParseRef(const std::string& ref, storage::AssessmentKey* k) {
  if (ref.rfind(kRef, 0) != 0 || ref.size() < 5) return false;
  size_t bar = ref.rfind('|');
  if (bar == std::string::npos || bar < 4) return false;
  k->kind = ref[2];
  k->subject = ref.substr(3, bar - 3);
  try {
    k->day = std::stoll(ref.substr(bar + 1));
  } catch (...) {
    return false;
  }
  return true;
}

bool Counted(Figure f) {
  return f != Figure::kOverdueNow && f != Figure::kScoreSum && f != Figure::kOnBehalfScoreSum;
}

bool DepartmentFigure(Figure f) {
  switch (f) {
    case Figure::kSummoned:
    case Figure::kReportedIn:
    case Figure::kReportedInOnTime:
    case Figure::kRefusals:
    case Figure::kPartsDone:
    case Figure::kNoShows:
      return true;
    default:
      return false;
  }
}

bool JurisdictionFigure(Figure f) {
  switch (f) {
    case Figure::kSummoned:
    case Figure::kReportedIn:
    case Figure::kReportedInOnTime:
    case Figure::kRefusals:
    case Figure::kPartsDone:
      return false;
    default:
      return true;
  }
}

}  // namespace

// whistle_assessment_events_total{level, figure}: level is the level of the
// jurisdiction an event is counted for (ancestors' subtree copies are not
// counted again), or "department".
struct AssessmentBook::Probe {
  // [level 0..5 (0 = department)][figure]
  std::array<std::array<prometheus::Counter*, core::assessment::kFigureCount + 1>, 6> series{};
  prometheus::Counter* sent = nullptr;      // (subject, day) rows written to the parent's outbox
  prometheus::Counter* received = nullptr;  // rows applied from child nodes
};

AssessmentBook::AssessmentBook(prometheus::Registry* registry) {
  if (registry == nullptr) return;
  probe_ = std::make_unique<Probe>();
  auto& family = prometheus::BuildCounter()
                     .Name("whistle_assessment_events_total")
                     .Help(
                         "Assessment events by the level of the jurisdiction they count for "
                         "(or department) and figure (docs/assessment.md)")
                     .Register(*registry);
  probe_->sent = &prometheus::BuildCounter()
                      .Name("whistle_assessment_rollup_sent_total")
                      .Help("Assessment (subject, day) rows written to the parent node's outbox")
                      .Register(*registry)
                      .Add({});
  probe_->received = &prometheus::BuildCounter()
                          .Name("whistle_assessment_rollup_received_total")
                          .Help("Assessment (subject, day) rows applied from child nodes")
                          .Register(*registry)
                          .Add({});
  for (Figure f : core::assessment::AllFigures()) {
    if (!Counted(f)) continue;
    const std::string name(core::assessment::FigureName(f));
    const auto i = static_cast<size_t>(f);
    if (DepartmentFigure(f)) {
      probe_->series[0][i] = &family.Add({{"level", "department"}, {"figure", name}});
    }
    if (JurisdictionFigure(f)) {
      for (int level = v1::LEVEL_CITY; level <= v1::LEVEL_GRID; ++level) {
        probe_->series[level][i] =
            &family.Add({{"level", LevelLabel(static_cast<v1::Level>(level))}, {"figure", name}});
      }
    }
  }
}

AssessmentBook::~AssessmentBook() { StopSending(); }

void AssessmentBook::StartSending(storage::Store* store, std::function<int64_t()> now_ms) {
  std::lock_guard lock(send_mu_);
  if (sender_.joinable()) return;
  store_ = store;
  now_ms_ = std::move(now_ms);
  stopping_ = false;
  sender_ = std::thread([this] { SendLoop(); });
}

void AssessmentBook::StopSending() {
  {
    std::lock_guard lock(send_mu_);
    stopping_ = true;
  }
  send_cv_.notify_all();
  if (sender_.joinable()) sender_.join();
}

void AssessmentBook::SendLoop() {
  const std::string parent(core::kParentPeer);
  std::unique_lock lock(send_mu_);
  for (;;) {
    send_cv_.wait_for(lock, kSendEvery, [this] { return stopping_; });
    if (stopping_) return;  // the durable marks send them after the restart
    lock.unlock();
    for (;;) {
      auto pending = storage::PendingAssessment(*store_, kSendBatch);
      if (!pending.ok()) {
        Log(LogLevel::kWarn, "assessment rows not sent up; retrying",
            {{"error", pending.status().ToString()}});
        break;
      }
      if (pending->empty()) break;
      // Queued after every batch that marked them: when the entry is sent,
      // the totals it reads include those changes.
      storage::Batch batch;
      const int64_t now = now_ms_();
      for (const auto& k : *pending) {
        batch.Send(parent, RefOf(k), now);
        storage::ClearPendingAssessment(batch, k);
      }
      Status s = store_->CommitAndWait(std::move(batch));
      if (!s.ok()) {
        Log(LogLevel::kWarn, "assessment rows not sent up; retrying", {{"error", s.ToString()}});
        break;
      }
      if (probe_) probe_->sent->Increment(static_cast<double>(pending->size()));
      if (pending->size() < kSendBatch) break;
    }
    lock.lock();
  }
}

bool AssessmentBook::BuildPayload(const storage::Store& store, const std::string& root,
                                  const std::string& ref, v1::LinkPayload* payload) const {
  storage::AssessmentKey k;
  if (!ParseRef(ref, &k)) return false;
  auto totals = storage::AssessmentTotals(store, k);
  auto* sync = payload->mutable_assessment_sync();
  sync->set_root(root);
  sync->set_subject_kind(std::string(1, k.kind));
  sync->set_subject(k.subject);
  sync->set_day(k.day);
  if (totals.ok()) {
    for (const auto& [figure, value] : *totals) (*sync->mutable_values())[figure] = value;
  }
  return true;
}

Status AssessmentBook::ApplySync(const std::string& from, const v1::AssessmentSync& sync,
                                 const core::Topology& topology, bool send_up,
                                 storage::Batch& batch) {
  auto bad = [](const std::string& why) {
    return Status::InvalidArgument("assessment_sync." + why);
  };
  if (from == core::kParentPeer) return bad("root: only child nodes send assessment rows up");
  if (sync.root() != from) return bad("root: not the link's child root \"" + from + "\"");
  const std::string& kind = sync.subject_kind();
  if (kind == "j") {
    if (topology.Find(sync.subject()) == nullptr) return bad("subject: unknown jurisdiction");
    // A child counts for the jurisdictions of its subtree and their ancestors.
    if (!topology.IsWithin(sync.subject(), from) && !topology.IsWithin(from, sync.subject())) {
      return bad("subject: neither inside nor above the child's root");
    }
  } else if (kind == "d") {
    if (topology.FindDepartment(sync.subject()) == nullptr) {
      return bad("subject: unknown department");
    }
  } else {
    return bad("subject_kind: want \"j\" or \"d\"");
  }
  if (sync.day() != storage::kAssessmentGaugeDay && (sync.day() < 0 || sync.day() > 999999)) {
    return bad("day: want -1 or 0..999999");
  }
  std::vector<std::pair<int, int64_t>> values;
  for (const auto& [figure, value] : sync.values()) {
    if (figure < 1 || figure > core::assessment::kFigureCount) return bad("values: unknown figure");
    if (value < -kMaxValue || value > kMaxValue) return bad("values: out of range");
    values.emplace_back(figure, value);
  }
  std::sort(values.begin(), values.end());
  storage::PutChildAssessment(
      batch, from, {kind[0], sync.subject(), static_cast<int64_t>(sync.day())}, values, send_up);
  if (probe_) probe_->received->Increment();
  return Status::Ok();
}

void AssessmentBook::Record(const storage::Store& store, const core::Context& ctx,
                            const v1::Case* before, core::Transition& t, storage::Batch& batch,
                            bool send_up) {
  v1::Case& next = t.next;
  if (before == nullptr && t.entry.kind() == v1::TRANSITION_KIND_REPORT &&
      !next.place().grid_id().empty()) {
    const int64_t at = t.entry.at_ms();
    std::string key = next.place().grid_id();
    key.push_back('\0');
    key.append(next.category());
    int64_t last = 0;
    {
      std::lock_guard lock(mu_);
      if (auto it = last_report_.find(key); it != last_report_.end()) last = it->second;
    }
    if (last == 0) {
      auto stored = storage::LastReport(store, next.place().grid_id(), next.category());
      if (stored.ok()) last = *stored;
    }
    int64_t window = ctx.policy.RecurrenceWindowMs(next.category(), next.severity());
    if (core::assessment::IsRecurrence(last, at, window)) next.set_recurrence(true);
    storage::RecordLastReport(batch, next.place().grid_id(), next.category(), at);
    std::lock_guard lock(mu_);
    if (last_report_.size() >= kMaxRemembered) last_report_.clear();  // the store has them
    last_report_[key] = std::max(last, at);
  }
  core::assessment::Annotate(before, next, t.entry, ctx.topology);
  for (const auto& d : core::assessment::Deltas(before, next, t.entry, ctx.topology)) {
    storage::AddAssessmentRow(
        batch, {static_cast<char>(d.kind), d.subject, d.day, static_cast<int>(d.figure), d.value},
        send_up);
    if (!probe_ || !d.primary || !Counted(d.figure) || d.value <= 0) continue;
    size_t level =
        d.kind == core::assessment::SubjectKind::kDepartment ? 0 : static_cast<size_t>(d.level);
    if (level >= probe_->series.size()) continue;
    if (prometheus::Counter* c = probe_->series[level][static_cast<size_t>(d.figure)]) {
      c->Increment(static_cast<double>(d.value));
    }
  }
}

}  // namespace whistle::actors
