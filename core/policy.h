// Policy: the category catalogue and, per category x severity (first
// matching rule), the owning level (graded response), each step's time limit,
// how far a missed deadline escalates automatically, and the recurrence
// window. Immutable after Build(); safe from any thread. docs/policy.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "whistle/v1/case.pb.h"
#include "whistle/v1/policy.pb.h"

namespace whistle::core {

// Seconds per step for one case after a rule's overrides; 0 = no limit.
struct StepSeconds {
  int64_t accept = 0;
  int64_t dispatch = 0;
  int64_t report_in = 0;
  int64_t resolve = 0;
  int64_t verify = 0;
  int64_t evaluate = 0;
};

// What the policy says about one category and severity.
struct RuleMatch {
  int index = -1;  // the matching entry of `rules` (or `ownership`); -1 = none (defaults)
  v1::Level owner_level = v1::LEVEL_COMMUNITY;
  v1::Level escalate_up_to = v1::LEVEL_TOWNSHIP;  // resolved: never LEVEL_UNSPECIFIED
  StepSeconds limits;
  int64_t recurrence_window_seconds = 0;
};

class Policy {
 public:
  // Validates: categories unique and well formed; every rule's levels known,
  // escalate_up_to not below owner_level, limits and windows in 0..100 years,
  // no rule duplicating or shadowed by an earlier one; not both `rules` and
  // `ownership`. Errors name the entry: "rules[3].limits.accept_seconds: ...".
  static StatusOr<std::shared_ptr<const Policy>> Build(v1::Policy config);

  const v1::Policy& config() const { return config_; }
  bool KnownCategory(std::string_view category) const;
  // The first matching rule, with its limits resolved against `limits`; the
  // defaults (community, up to the township, policy-wide limits) when none matches.
  RuleMatch Match(std::string_view category, v1::Severity severity) const;
  v1::Level OwnerLevel(std::string_view category, v1::Severity severity) const;
  // Highest level a missed deadline moves a case automatically.
  v1::Level EscalateUpTo(std::string_view category, v1::Severity severity) const;
  // Recurrence window in milliseconds; 0 = recurrences not counted.
  int64_t RecurrenceWindowMs(std::string_view category, v1::Severity severity) const;

  // Deadlines as absolute milliseconds from `now_ms`; 0 when unlimited.
  int64_t AcceptBy(std::string_view category, v1::Severity severity, int64_t now_ms) const;
  int64_t DispatchBy(std::string_view category, v1::Severity severity, int64_t now_ms) const;
  int64_t ReportInBy(std::string_view category, v1::Severity severity, int64_t now_ms) const;
  int64_t ResolveBy(std::string_view category, v1::Severity severity, int64_t now_ms) const;
  int64_t VerifyBy(std::string_view category, v1::Severity severity, int64_t now_ms) const;
  int64_t EvaluateBy(std::string_view category, v1::Severity severity, int64_t now_ms) const;

 private:
  explicit Policy(v1::Policy config);
  v1::Policy config_;
  // `rules`, or `ownership` converted to rules.
  std::vector<v1::PolicyRule> rules_;
};

// Parses a Policy from JSON or protobuf text format (see ParseTopology).
StatusOr<v1::Policy> ParsePolicy(std::string_view text, std::string_view origin);

// The shipped defaults (DOMAIN.md "Reference catalogue"): categories,
// ownership by severity with public order and petitions at the township,
// the published time limits, and automatic escalation no higher than the
// township for matters owned there or below ("小事不出社区、大事不出乡镇").
v1::Policy DefaultPolicy();

}  // namespace whistle::core
