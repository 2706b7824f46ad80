#include "storage/assessment_store.h"

#include <cstdio>

#include "storage/keys.h"
#include "storage/raw.h"

namespace whistle::storage {

namespace {

using internal::Family;
using internal::Raw;

constexpr Family kF = Family::kMeta;
constexpr int64_t kMaxDay = 999999;

bool ValidDay(int64_t day) { return day == kAssessmentGaugeDay || (day >= 0 && day <= kMaxDay); }

std::string DayText(int64_t day) {
  if (day == kAssessmentGaugeDay) return "G";
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(day));
  return buf;
}

std::string FigureText(int figure) {
  char buf[4];
  std::snprintf(buf, sizeof buf, "%02d", figure);
  return buf;
}

// "<tag><k><subject>\0"
std::string SubjectPrefix(char tag, char kind, std::string_view subject) {
  std::string k;
  k.push_back(tag);
  k.push_back('/');
  k.push_back(kind);
  k.append(subject);
  k.push_back(keys::kSep);
  return k;
}

std::string RowKey(char kind, std::string_view subject, int64_t day, int figure) {
  return SubjectPrefix('a', kind, subject) + DayText(day) + "/" + FigureText(figure);
}

std::string PendingKey(char kind, std::string_view subject, int64_t day) {
  return SubjectPrefix('p', kind, subject) + DayText(day);
}

std::string LastReportKey(std::string_view grid, std::string_view category) {
  std::string k = "g/";
  k.append(grid);
  k.push_back(keys::kSep);
  k.append(category);
  return k;
}

// Parses "<day or G>/<figure 2>[/...]" after a subject prefix.
bool ParseDayFigure(std::string_view rest, int64_t* day, int* figure, std::string_view* tail) {
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view d = rest.substr(0, slash);
  if (d == "G") {
    *day = kAssessmentGaugeDay;
  } else {
    if (d.size() != 6) return false;
    int64_t v = 0;
    for (char ch : d) {
      if (ch < '0' || ch > '9') return false;
      v = v * 10 + (ch - '0');
    }
    *day = v;
  }
  std::string_view f = rest.substr(slash + 1);
  if (f.size() < 2 || f[0] < '0' || f[0] > '9' || f[1] < '0' || f[1] > '9') return false;
  *figure = (f[0] - '0') * 10 + (f[1] - '0');
  *tail = f.substr(2);
  return true;
}

// Adds the rows under `prefix` for days [from, to] and gauges into `sums`.
Status SumRange(const Store& store, const std::string& prefix, int64_t from_day, int64_t to_day,
                std::vector<int64_t>& sums) {
  auto add = [&sums, &prefix](std::string_view key, std::string_view value) {
    int64_t day = 0;
    int figure = 0;
    std::string_view tail;
    if (!ParseDayFigure(key.substr(prefix.size()), &day, &figure, &tail)) return true;
    auto v = keys::DecodeInt64(value);
    if (v && figure >= 0 && figure < static_cast<int>(sums.size())) sums[figure] += *v;
    return true;
  };
  Status s = Raw::Scan(store, kF, prefix + DayText(from_day), prefix + DayText(to_day + 1),
                       "assessment rows", add);
  if (!s.ok()) return s;
  const std::string gauges = prefix + "G/";
  return Raw::Scan(store, kF, gauges, keys::PrefixEnd(gauges), "assessment gauges", add);
}

}  // namespace

void AddAssessmentRow(Batch& batch, const AssessmentRow& row, bool mark_pending) {
  if (!ValidDay(row.day) || row.figure < 1 || row.figure > kAssessmentMaxFigure || row.value == 0 ||
      row.subject.empty()) {
    return;
  }
  Raw::AddInt64(batch, kF, RowKey(row.kind, row.subject, row.day, row.figure), row.value);
  if (mark_pending) Raw::Put(batch, kF, PendingKey(row.kind, row.subject, row.day), "");
}

void RecordLastReport(Batch& batch, std::string_view grid, std::string_view category,
                      int64_t at_ms) {
  Raw::Put(batch, kF, LastReportKey(grid, category), keys::EncodeInt64(at_ms));
}

StatusOr<int64_t> LastReport(const Store& store, std::string_view grid, std::string_view category) {
  std::string value;
  Status s = Raw::Get(store, kF, LastReportKey(grid, category), &value);
  if (s.code() == Code::kNotFound) return int64_t{0};
  if (!s.ok()) return s;
  auto v = keys::DecodeInt64(value);
  return v ? *v : 0;
}

StatusOr<std::vector<int64_t>> SumAssessment(const Store& store, char kind,
                                             std::string_view subject, int64_t from_day,
                                             int64_t to_day) {
  std::vector<int64_t> sums(kAssessmentMaxFigure + 1, 0);
  if (from_day < 0) from_day = 0;
  if (to_day > kMaxDay - 1) to_day = kMaxDay - 1;
  if (from_day > to_day) return sums;
  Status s = SumRange(store, SubjectPrefix('a', kind, subject), from_day, to_day, sums);
  if (!s.ok()) return s;
  s = SumRange(store, SubjectPrefix('b', kind, subject), from_day, to_day, sums);
  if (!s.ok()) return s;
  return sums;
}

StatusOr<std::vector<AssessmentKey>> PendingAssessment(const Store& store, size_t limit) {
  std::vector<AssessmentKey> out;
  Status s = Raw::Scan(store, kF, "p/", "p0", "assessment pending",
                       [&out, limit](std::string_view key, std::string_view) {
                         std::string_view rest = key.substr(2);
                         size_t sep = rest.find(keys::kSep);
                         if (rest.size() < 2 || sep == std::string_view::npos) return true;
                         AssessmentKey k;
                         k.kind = rest[0];
                         k.subject = std::string(rest.substr(1, sep - 1));
                         std::string_view d = rest.substr(sep + 1);
                         if (d == "G") {
                           k.day = kAssessmentGaugeDay;
                         } else {
                           int64_t v = 0;
                           for (char ch : d) v = v * 10 + (ch - '0');
                           k.day = v;
                         }
                         out.push_back(std::move(k));
                         return out.size() < limit;
                       });
  if (!s.ok()) return s;
  return out;
}

StatusOr<std::vector<std::pair<int, int64_t>>> AssessmentTotals(const Store& store,
                                                                const AssessmentKey& key) {
  std::vector<int64_t> sums(kAssessmentMaxFigure + 1, 0);
  std::vector<bool> seen(kAssessmentMaxFigure + 1, false);
  for (char tag : {'a', 'b'}) {
    std::string prefix = SubjectPrefix(tag, key.kind, key.subject) + DayText(key.day) + "/";
    Status s = Raw::Scan(store, kF, prefix, keys::PrefixEnd(prefix), "assessment totals",
                         [&](std::string_view k, std::string_view value) {
                           std::string_view f = k.substr(prefix.size());
                           if (f.size() < 2) return true;
                           int figure = (f[0] - '0') * 10 + (f[1] - '0');
                           auto v = keys::DecodeInt64(value);
                           if (v && figure > 0 && figure <= kAssessmentMaxFigure) {
                             sums[figure] += *v;
                             seen[figure] = true;
                           }
                           return true;
                         });
    if (!s.ok()) return s;
  }
  std::vector<std::pair<int, int64_t>> out;
  for (int f = 1; f <= kAssessmentMaxFigure; ++f) {
    // A row seen is sent even at zero: the parent must see a gauge fall to 0.
    if (seen[f]) out.emplace_back(f, sums[f]);
  }
  return out;
}

void ClearPendingAssessment(Batch& batch, const AssessmentKey& key) {
  Raw::Delete(batch, kF, PendingKey(key.kind, key.subject, key.day));
}

void PutChildAssessment(Batch& batch, std::string_view child_node, const AssessmentKey& key,
                        const std::vector<std::pair<int, int64_t>>& values, bool mark_pending) {
  if (!ValidDay(key.day) || key.subject.empty()) return;
  for (const auto& [figure, value] : values) {
    if (figure < 1 || figure > kAssessmentMaxFigure) continue;
    std::string k = SubjectPrefix('b', key.kind, key.subject) + DayText(key.day) + "/" +
                    FigureText(figure) + "/";
    k.append(child_node);
    Raw::Put(batch, kF, std::move(k), keys::EncodeInt64(value));
  }
  if (mark_pending) Raw::Put(batch, kF, PendingKey(key.kind, key.subject, key.day), "");
}

}  // namespace whistle::storage
