// The assessment side of a transition, run by the jurisdiction actor while it
// builds the transition's batch: the node's bookkeeping on the case
// (core::assessment::Annotate), the recurrence mark of a report (the last
// report of the same grid + category, from the store or still in flight), and
// the figure rows (core::assessment::Deltas) written into the same batch.
// AssessmentBook is owned by NodeContext; thread-safe (a mutex around the
// in-flight report times; the metrics lock internally).
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "core/assessment.h"
#include "core/case_machine.h"
#include "storage/store.h"
#include "whistle/v1/link.pb.h"

namespace prometheus {
class Registry;
}

namespace whistle::actors {

class AssessmentBook {
 public:
  // `registry` may be null: no metrics. The series exist at zero from here on.
  explicit AssessmentBook(prometheus::Registry* registry);
  ~AssessmentBook();

  // Adds to `batch` (the transition's own batch) everything the assessment
  // needs, and sets the bookkeeping fields of `t.next` (call before the case
  // is put). `send_up`: rows are marked for the parent node (federation).
  void Record(const storage::Store& store, const core::Context& ctx, const v1::Case* before,
              core::Transition& t, storage::Batch& batch, bool send_up);

  // ---- Federation: rows go up to the parent node (docs/assessment.md) ----
  // A thread that, every 200 ms, writes every (subject, day) changed since
  // the last round to the parent's outbox as an "a:" reference and clears its
  // mark, in one batch; the link reads the totals when it sends (absolute
  // values: a resend or a later message replaces the parent's copy). Marks
  // are durable: rows changed before a crash go up after the restart.
  void StartSending(storage::Store* store, std::function<int64_t()> now_ms);
  void StopSending();  // before the store closes
  // The payload of outbox reference `ref` when it is an "a:" one (else false).
  bool BuildPayload(const storage::Store& store, const std::string& root, const std::string& ref,
                    v1::LinkPayload* payload) const;
  // Checks an AssessmentSync from link `from` (a child root) and adds its
  // rows to `batch` (marked for this node's parent when `send_up`).
  Status ApplySync(const std::string& from, const v1::AssessmentSync& sync,
                   const core::Topology& topology, bool send_up, storage::Batch& batch);

 private:
  void SendLoop();

  struct Probe;
  std::unique_ptr<Probe> probe_;
  std::mutex mu_;
  // grid \0 category -> time of the last report written by this node (the
  // store has it once durable; this map covers reports still in flight).
  std::unordered_map<std::string, int64_t> last_report_;
  // The sending thread.
  storage::Store* store_ = nullptr;
  std::function<int64_t()> now_ms_;
  std::mutex send_mu_;
  std::condition_variable send_cv_;
  bool stopping_ = false;
  std::thread sender_;
};

}  // namespace whistle::actors
