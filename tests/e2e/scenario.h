// The scenario, played over gRPC against a running whistled: the
// ids come from the embedded Shizuishan topology.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tests/e2e/whistled_process.h"

namespace whistle::testing {

struct ScenarioIds {
  std::string grid, community, township, county;
  std::string police, judicial;
};

// An urban grid of 大武口区 and its chain of owners and township departments.
ScenarioIds DawukouIds();

struct Step {
  std::string name;
  Identity who;
  std::string case_id;  // empty for the report
  v1::Command command;
  v1::CaseState expect_state;
};

// Steps after the report: accept, escalate, whistle, report-ins, resolves,
// verify, close, evaluate.
std::vector<Step> ScenarioSteps(const ScenarioIds& ids, const std::string& case_id);

Identity GridWorker(const ScenarioIds& ids);
v1::ReportCommand NeighbourDispute(const ScenarioIds& ids, const std::string& request_id);

// Calls Act and returns the status; fills *out on success.
grpc::Status Act(v1::CaseService::Stub& stub, const Identity& who, const std::string& case_id,
                 const v1::Command& command, v1::Case* out);
grpc::Status Report(v1::CaseService::Stub& stub, const Identity& who,
                    const v1::ReportCommand& report, v1::Case* out);
grpc::Status Get(v1::CaseService::Stub& stub, const Identity& who, const std::string& case_id,
                 v1::Case* out);
grpc::Status History(v1::CaseService::Stub& stub, const Identity& who, const std::string& case_id,
                     v1::GetHistoryResponse* out);

}  // namespace whistle::testing
