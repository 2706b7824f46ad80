#include "cli/assess_verbs.h"

#include <cstdio>
#include <map>

#include "cli/args.h"
#include "core/assessment.h"
#include "whistle/v1/assessment.grpc.pb.h"

namespace whistle::cli {

namespace a = core::assessment;

const char* const kPeriodHelp =
    "  --period P           day, week (Monday..Sunday) or month (default: month), the one\n"
    "                       containing --at (default: now); days are UTC+08:00 days\n"
    "  --at DATE            a day inside the period: 2026-11-27 or unix ms\n"
    "  --from DATE --to DATE  whole days from..to, both included (at most 731 days)\n";

namespace {

// "2026-11-27" (a UTC+08:00 day) or unix ms -> ms inside that day. Anything
// else (a day that does not exist, a number out of range, text) is refused with
// one message saying both forms, e.g. `--at: want a date YYYY-MM-DD or unix ms,
// got "2026-13-45"`.
bool ParseDate(const std::string& flag, const std::string& text, int64_t* out, std::string* why) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  if (text.size() == 10 && std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 &&
      m >= 1 && m <= 12 && d >= 1 && d <= 31) {
    // Search the day by name: exact and leaves the calendar to core.
    int64_t guess = (static_cast<int64_t>(y) - 1970) * 365 + (m - 1) * 30 + d;
    for (int64_t day = guess - 40; day <= guess + 40; ++day) {
      if (a::DayName(day) == text) {
        *out = a::DayStartMs(day);
        return true;
      }
    }
  } else if (ParseNumber(flag, text, 1, 9'999'999'999'999, out, why)) {
    return true;
  }
  // Quote at most 40 bytes of what was given: it goes to a terminal.
  std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
  for (char& ch : shown) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  *why = flag + ": want a date YYYY-MM-DD or unix ms, got \"" + shown + "\"";
  return false;
}

// The period flags into `spec`; false with *why on bad input. A flag given
// with an empty value (`--at ""`) is refused as any bad value is, never read
// as absent (which would answer for the current month).
bool TakePeriod(Args& args, v1::PeriodSpec* spec, std::string* why) {
  std::string period = Take(args, "--period");
  std::string at = Take(args, "--at");
  std::string from = Take(args, "--from");
  std::string to = Take(args, "--to");
  const bool has_period = Given("--period"), has_at = Given("--at");
  const bool has_from = Given("--from"), has_to = Given("--to");
  if (has_from || has_to) {
    if (!has_from || !has_to) {
      *why = has_from ? "--to: needed with --from" : "--from: needed with --to";
      return false;
    }
    if (has_period || has_at) {
      *why = "--period: give --period/--at or --from/--to, not both";
      return false;
    }
    int64_t f = 0, t = 0;
    if (!ParseDate("--from", from, &f, why) || !ParseDate("--to", to, &t, why)) return false;
    spec->set_from_ms(f);
    spec->set_to_ms(t);
    return true;
  }
  static const std::map<std::string, v1::Period> kPeriods = {
      {"day", v1::PERIOD_DAY}, {"week", v1::PERIOD_WEEK}, {"month", v1::PERIOD_MONTH}};
  auto it = kPeriods.find(has_period ? period : "month");
  if (it == kPeriods.end()) {
    *why = "--period: want day, week or month, got \"" + period + "\"";
    return false;
  }
  spec->set_period(it->second);
  if (has_at) {
    int64_t ms = 0;
    if (!ParseDate("--at", at, &ms, why)) return false;
    spec->set_at_ms(ms);
  }
  return true;
}

// `text` padded with spaces to `width` terminal columns (CJK characters take two).
std::string Pad(const std::string& text, size_t width) {
  size_t cols = 0;
  for (size_t i = 0; i < text.size();) {
    unsigned char ch = static_cast<unsigned char>(text[i]);
    size_t len = ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
    cols += len >= 3 ? 2 : 1;
    i += len;
  }
  return cols >= width ? text : text + std::string(width - cols, ' ');
}

std::string RateText(const v1::Rate& r) {
  if (!r.defined()) return "-";
  char buf[64];
  if (r.name().find("mean") != std::string::npos) {
    std::snprintf(buf, sizeof buf, "%.2f", r.value());
  } else {
    std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * r.value());
  }
  return buf;
}

int64_t CountOf(const v1::AssessResponse& r, const char* name) {
  auto it = r.counts().find(name);
  return it == r.counts().end() ? 0 : it->second;
}

void PrintAssessment(const v1::AssessResponse& r) {
  std::printf("%s %s, %s .. %s (UTC+08:00 days)\n", r.department() ? "department" : "jurisdiction",
              r.subject_id().c_str(), r.from_day().c_str(), r.to_day().c_str());
  std::printf("%-22s %10s %12s %12s\n", "RATE", "VALUE", "NUMERATOR", "DENOMINATOR");
  for (const auto& rate : r.rates()) {
    std::printf("%-22s %10s %12lld %12lld\n", rate.name().c_str(), RateText(rate).c_str(),
                static_cast<long long>(rate.numerator()),
                static_cast<long long>(rate.denominator()));
  }
  std::printf("\n%-22s %10s\n", "COUNT", "VALUE");
  static const char* kJurisdiction[] = {
      "received",           "recurrences",        "responded",
      "responded_in_time",  "responses_missed",   "resolved",
      "resolved_in_time",   "resolutions_missed", "closed",
      "closed_in_time",     "local_closed",       "kept_local",
      "evaluated",          "satisfied",          "evaluated_on_behalf",
      "evaluation_expired", "escalations_out",    "returns",
      "reopened",           "no_shows",           "overdue_now"};
  static const char* kDepartment[] = {"summoned", "reported_in", "reported_in_on_time",
                                      "no_shows", "refusals",    "parts_done"};
  if (r.department()) {
    for (const char* name : kDepartment) {
      std::printf("%-22s %10lld\n", name, static_cast<long long>(CountOf(r, name)));
    }
  } else {
    for (const char* name : kJurisdiction) {
      std::printf("%-22s %10lld\n", name, static_cast<long long>(CountOf(r, name)));
    }
  }
}

void PrintRank(const v1::RankResponse& r) {
  std::printf("ranked by %s (%s), %s .. %s (UTC+08:00 days)\n", r.figure().c_str(),
              r.ascending() ? "fewer is better" : "more is better", r.from_day().c_str(),
              r.to_day().c_str());
  bool rate = !r.entries().empty() && r.entries(0).has_rate();
  if (rate) {
    std::printf("%-5s %-28s %-20s %10s %12s\n", "RANK", "JURISDICTION", "NAME", "VALUE", "OF");
  } else {
    std::printf("%-5s %-28s %-20s %10s\n", "RANK", "JURISDICTION", "NAME", "VALUE");
  }
  for (const auto& e : r.entries()) {
    std::string rank = e.rank() == 0 ? "-" : std::to_string(e.rank());
    if (rate) {
      char of[64];
      std::snprintf(of, sizeof of, "%lld/%lld", static_cast<long long>(e.rate().numerator()),
                    static_cast<long long>(e.rate().denominator()));
      std::printf("%-5s %-28s %s %10s %12s\n", rank.c_str(), e.jurisdiction_id().c_str(),
                  Pad(e.name(), 20).c_str(), RateText(e.rate()).c_str(), of);
    } else {
      std::printf("%-5s %-28s %s %10lld\n", rank.c_str(), e.jurisdiction_id().c_str(),
                  Pad(e.name(), 20).c_str(), static_cast<long long>(e.count()));
    }
  }
}

}  // namespace

int AssessVerb(const VerbIo& io, Args args) {
  v1::AssessRequest req;
  std::string why;
  req.set_department_id(Take(args, "--department"));
  if (!TakePeriod(args, req.mutable_period(), &why)) return io.usage(why);
  if (!args.empty() && GivenTwice(args[0])) return io.usage(Leftover("assess", args));
  if (req.department_id().empty()) {
    if (args.empty() || args[0].rfind("--", 0) == 0) {
      return io.usage("assess: JURISDICTION missing (or --department D)");
    }
    req.set_jurisdiction_id(args[0]);
    args.erase(args.begin());
  }
  if (why = Leftover("assess", args); !why.empty()) return io.usage(why);
  auto stub = v1::AssessmentService::NewStub(io.channel);
  grpc::ClientContext ctx;
  io.prepare(ctx);
  v1::AssessResponse resp;
  grpc::Status status = stub->Assess(&ctx, req, &resp);
  return io.print(status, resp, [&resp] { PrintAssessment(resp); });
}

int RankVerb(const VerbIo& io, Args args) {
  v1::RankRequest req;
  std::string why;
  req.set_figure(Take(args, "--by"));
  if (!TakePeriod(args, req.mutable_period(), &why)) return io.usage(why);
  if (!args.empty() && GivenTwice(args[0])) return io.usage(Leftover("rank", args));
  if (req.figure().empty()) return io.usage("rank: --by FIGURE missing");
  if (args.empty() || args[0].rfind("--", 0) == 0) return io.usage("rank: JURISDICTION missing");
  req.set_jurisdiction_id(args[0]);
  args.erase(args.begin());
  if (why = Leftover("rank", args); !why.empty()) return io.usage(why);
  auto stub = v1::AssessmentService::NewStub(io.channel);
  grpc::ClientContext ctx;
  io.prepare(ctx);
  v1::RankResponse resp;
  grpc::Status status = stub->Rank(&ctx, req, &resp);
  return io.print(status, resp, [&resp] { PrintRank(resp); });
}

}  // namespace whistle::cli
