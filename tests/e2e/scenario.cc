#include "tests/e2e/scenario.h"

#include "core/topology.h"

namespace whistle::testing {

ScenarioIds DawukouIds() {
  static const ScenarioIds ids = [] {
    auto topology = core::Topology::Build(core::ShizuishanTopology());
    ScenarioIds out;
    for (const auto& j : (*topology)->config().jurisdictions()) {
      if (j.level() == v1::LEVEL_GRID && j.grid_kind() == v1::GRID_KIND_URBAN &&
          (*topology)->IsWithin(j.id(), "dwk")) {
        out.grid = j.id();
        break;
      }
    }
    out.community = (*topology)->AncestorAt(out.grid, v1::LEVEL_COMMUNITY)->id();
    out.township = (*topology)->AncestorAt(out.grid, v1::LEVEL_TOWNSHIP)->id();
    out.county = (*topology)->AncestorAt(out.grid, v1::LEVEL_COUNTY)->id();
    for (const auto* d : (*topology)->DepartmentsOf(out.township)) {
      if (d->kind() == "police_station") out.police = d->id();
      if (d->kind() == "judicial_office") out.judicial = d->id();
    }
    return out;
  }();
  return ids;
}

Identity GridWorker(const ScenarioIds& ids) { return {"wang.grid", "grid_worker", ids.grid, ""}; }

v1::ReportCommand NeighbourDispute(const ScenarioIds& ids, const std::string& request_id) {
  v1::ReportCommand r;
  r.set_request_id(request_id);
  r.set_category("dispute.neighbour");
  r.set_severity(v1::SEVERITY_GENERAL);
  r.mutable_place()->set_grid_id(ids.grid);
  r.mutable_place()->set_address("3号楼2单元");
  r.set_text("楼上楼下因漏水发生争吵");
  return r;
}

std::vector<Step> ScenarioSteps(const ScenarioIds& ids, const std::string& id) {
  Identity community{"li.community", "staff", ids.community, ""};
  Identity street{"zhao.street", "staff", ids.township, ""};
  Identity police{"desk.police", "department", "", ids.police};
  Identity judicial{"desk.judicial", "department", "", ids.judicial};
  std::vector<Step> steps;
  auto add = [&](std::string name, Identity who, auto fill, v1::CaseState state) {
    Step s{std::move(name), std::move(who), id, {}, state};
    fill(s.command);
    steps.push_back(std::move(s));
  };
  add(
      "community accepts", community, [](v1::Command& c) { c.mutable_accept(); },
      v1::CASE_STATE_ACCEPTED);
  add(
      "community escalates", community,
      [](v1::Command& c) { c.mutable_escalate()->set_reason("调解未果"); },
      v1::CASE_STATE_ACCEPTED);
  add(
      "street blows the whistle", street,
      [&](v1::Command& c) {
        c.mutable_whistle()->add_department_ids(ids.police);
        c.mutable_whistle()->add_department_ids(ids.judicial);
      },
      v1::CASE_STATE_IN_PROGRESS);
  add(
      "police reports in", police, [](v1::Command& c) { c.mutable_report_in(); },
      v1::CASE_STATE_IN_PROGRESS);
  add(
      "judicial office reports in", judicial, [](v1::Command& c) { c.mutable_report_in(); },
      v1::CASE_STATE_IN_PROGRESS);
  add(
      "police resolves", police, [](v1::Command& c) { c.mutable_resolve(); },
      v1::CASE_STATE_IN_PROGRESS);
  add(
      "judicial office resolves", judicial, [](v1::Command& c) { c.mutable_resolve(); },
      v1::CASE_STATE_RESOLVED);
  add(
      "grid worker verifies", GridWorker(ids),
      [](v1::Command& c) { c.mutable_verify()->set_fixed(true); }, v1::CASE_STATE_VERIFIED);
  add(
      "street closes", street, [](v1::Command& c) { c.mutable_close(); }, v1::CASE_STATE_CLOSED);
  add(
      "reporter rates 5/5", GridWorker(ids),
      [](v1::Command& c) { c.mutable_evaluate()->set_score(5); }, v1::CASE_STATE_EVALUATED);
  return steps;
}

grpc::Status Act(v1::CaseService::Stub& stub, const Identity& who, const std::string& case_id,
                 const v1::Command& command, v1::Case* out) {
  grpc::ClientContext ctx;
  who.Apply(ctx);
  v1::CaseActionRequest req;
  req.set_case_id(case_id);
  *req.mutable_command() = command;
  return stub.Act(&ctx, req, out);
}

grpc::Status Report(v1::CaseService::Stub& stub, const Identity& who,
                    const v1::ReportCommand& report, v1::Case* out) {
  grpc::ClientContext ctx;
  who.Apply(ctx);
  v1::ReportCaseRequest req;
  *req.mutable_report() = report;
  return stub.Report(&ctx, req, out);
}

grpc::Status Get(v1::CaseService::Stub& stub, const Identity& who, const std::string& case_id,
                 v1::Case* out) {
  grpc::ClientContext ctx;
  who.Apply(ctx);
  v1::GetCaseRequest req;
  req.set_case_id(case_id);
  return stub.Get(&ctx, req, out);
}

grpc::Status History(v1::CaseService::Stub& stub, const Identity& who, const std::string& case_id,
                     v1::GetHistoryResponse* out) {
  grpc::ClientContext ctx;
  who.Apply(ctx);
  v1::GetHistoryRequest req;
  req.set_case_id(case_id);
  return stub.History(&ctx, req, out);
}

}  // namespace whistle::testing
