// Assessment rows: counters per (subject, day, figure), merged by addition in
// the meta column family, written in the same batch as the transition that
// changes them (core/assessment.h computes the deltas). A period's figures are
// one prefix range scan per subject (a year: at most 366 days of rows), never
// a scan of cases. Rows a child node sent up (federation) are kept apart, per
// child node, as absolute values, and added in on reads.
//
// Keys (meta column family; \0 = one 0x00 byte; <k> = 'j' jurisdiction, 'd' department):
//   a/<k><subject> \0 <day: 6 digits> / <figure: 2 digits>  -> int64 LE, merged (this node's rows)
//   a/<k><subject> \0 G / <figure: 2 digits>                -> int64 LE, merged (gauges)
//   b/<k><subject> \0 <day or G> / <figure> / <child node>   -> int64 LE, absolute (a child's rows)
//   g/<grid> \0 <category>                                  -> int64 LE: time of its last report
//   p/<k><subject> \0 <day or G>                            -> "": rows changed, not yet sent up
// Thread-safe like Store (reads from any thread; writes through a Batch).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "storage/store.h"

namespace whistle::storage {

inline constexpr int64_t kAssessmentGaugeDay = -1;
inline constexpr int kAssessmentMaxFigure = 99;

struct AssessmentRow {
  char kind = 'j';  // 'j' jurisdiction, 'd' department
  std::string subject;
  int64_t day = 0;  // 0..999999, or kAssessmentGaugeDay
  int figure = 0;   // 1..kAssessmentMaxFigure
  int64_t value = 0;
};

// Merges `row.value` into the row (out-of-range days or figures are ignored).
// With `mark_pending` the (subject, day) is also marked for sending up.
void AddAssessmentRow(Batch& batch, const AssessmentRow& row, bool mark_pending = false);

// Recurrence index: the time of the last report of `grid` + `category`.
void RecordLastReport(Batch& batch, std::string_view grid, std::string_view category,
                      int64_t at_ms);
// 0 when none.
StatusOr<int64_t> LastReport(const Store& store, std::string_view grid, std::string_view category);

// Sums of `subject`'s rows over days [from_day, to_day] plus its gauges,
// indexed by figure number (size kAssessmentMaxFigure + 1), this node's rows
// and every child node's. Reads at most (to_day - from_day + 1) * figures rows
// per node.
StatusOr<std::vector<int64_t>> SumAssessment(const Store& store, char kind,
                                             std::string_view subject, int64_t from_day,
                                             int64_t to_day);

// ---- Federation (a child node sends its rows up; the parent keeps them apart) ----

struct AssessmentKey {
  char kind = 'j';
  std::string subject;
  int64_t day = 0;  // or kAssessmentGaugeDay
};

// (subject, day) pairs marked by AddAssessmentRow(mark_pending), at most `limit`.
StatusOr<std::vector<AssessmentKey>> PendingAssessment(const Store& store, size_t limit);
// This node's total (own rows plus every child node's) of one (subject, day):
// (figure, value) pairs with nonzero values.
StatusOr<std::vector<std::pair<int, int64_t>>> AssessmentTotals(const Store& store,
                                                                const AssessmentKey& key);
void ClearPendingAssessment(Batch& batch, const AssessmentKey& key);
// Stores a child node's absolute values for one (subject, day) (counters only
// grow, so a figure once sent is always sent again; gauges are always sent).
// With `mark_pending`, marks the (subject, day) for this node's own parent.
void PutChildAssessment(Batch& batch, std::string_view child_node, const AssessmentKey& key,
                        const std::vector<std::pair<int, int64_t>>& values,
                        bool mark_pending = true);

}  // namespace whistle::storage
