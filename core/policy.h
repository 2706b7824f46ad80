// Policy: graded response (which level owns a case), the category catalogue
// and the time limits. Immutable after Build(); safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "core/status.h"
#include "whistle/v1/case.pb.h"
#include "whistle/v1/policy.pb.h"

namespace whistle::core {

class Policy {
 public:
  // Validates: categories unique and well formed, every rule's level set,
  // limits non-negative. Errors name the entry.
  static StatusOr<std::shared_ptr<const Policy>> Build(v1::Policy config);

  const v1::Policy& config() const { return config_; }
  bool KnownCategory(std::string_view category) const;
  // First matching ownership rule; LEVEL_COMMUNITY when none matches.
  v1::Level OwnerLevel(std::string_view category, v1::Severity severity) const;

  // Deadlines as absolute milliseconds from `now_ms`; 0 when unlimited.
  int64_t AcceptBy(v1::Severity severity, int64_t now_ms) const;
  int64_t DispatchBy(int64_t now_ms) const;
  int64_t ReportInBy(v1::Severity severity, int64_t now_ms) const;
  int64_t ResolveBy(v1::Severity severity, int64_t now_ms) const;
  int64_t VerifyBy(int64_t now_ms) const;
  int64_t EvaluateBy(int64_t now_ms) const;

 private:
  explicit Policy(v1::Policy config) : config_(std::move(config)) {}
  v1::Policy config_;
};

// Parses a Policy from JSON or protobuf text format (see ParseTopology).
StatusOr<v1::Policy> ParsePolicy(std::string_view text, std::string_view origin);

// The shipped defaults (DOMAIN.md "Reference catalogue"): categories,
// ownership by severity with public order and petitions at the township,
// and the published time limits.
v1::Policy DefaultPolicy();

}  // namespace whistle::core
