#include "services/case_service.h"

#include "core/text.h"
#include "services/access.h"
#include "services/call.h"
#include "services/identity.h"

namespace whistle::services {

namespace {

constexpr size_t kMaxIdLength = 128;

// Page tokens are "<position>.<hex>", which CheckId's charset covers.
constexpr size_t kMaxPageToken = 1024;

Status ValidateCaseId(const std::string& id) { return core::CheckId("case_id", id, kMaxIdLength); }

// An optional id (empty = a default): when set, a well-formed one.
Status ValidateOptionalId(std::string_view field, const std::string& id) {
  if (id.empty()) return Status::Ok();
  return core::CheckId(field, id, kMaxIdLength);
}

Status ValidateState(v1::CaseState state) {
  if (!v1::CaseState_IsValid(state)) {
    return Status::InvalidArgument("state: unknown value " + std::to_string(state));
  }
  return Status::Ok();
}

// Reads a case and checks the caller may see it.
StatusOr<v1::Case> ReadCase(const actors::Node& node, const v1::Caller& caller,
                            const std::string& case_id) {
  if (Status s = ValidateCaseId(case_id); !s.ok()) return s;
  auto found = node.Get(case_id);
  if (!found.ok()) return found.status();
  if (Status s = CheckCanRead(caller, *found, node.topology()); !s.ok()) return s;
  return found;
}

// The subtree a list or count covers: the request's, or the caller's own.
StatusOr<std::string> SubtreeRoot(const actors::Node& node, const v1::Caller& caller,
                                  const std::string& requested) {
  // A department reads the cases it is summoned or dispatched to, not a
  // subtree's (it could list cases whose Get it is refused).
  if (caller.role() == v1::ROLE_DEPARTMENT) {
    return Status::PermissionDenied(
        "jurisdiction_id: a department has no subtree to list or count; it lists its cases "
        "through InboxService.DepartmentCases");
  }
  std::string root = requested.empty() ? caller.jurisdiction_id() : requested;
  if (Status s = CheckCanReadSubtree(caller, root, node.topology()); !s.ok()) return s;
  return root;
}

// Finishes `call` with `result`, copying the value into `response` on success.
template <class T>
actors::CaseCallback Respond(Call call, T* response) {
  return [call, response](StatusOr<T> result) {
    if (result.ok()) *response = std::move(result).value();
    call.Finish(result.status());
  };
}

}  // namespace

grpc::ServerUnaryReactor* CaseService::Report(grpc::CallbackServerContext* context,
                                              const v1::ReportCaseRequest* request,
                                              v1::Case* response) {
  Call call(context, &probe_, "/whistle.v1.CaseService/Report");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (!request->has_report()) return call.Finish(Status::InvalidArgument("report: required"));
  auto report = core::CheckReport(std::move(caller).value(), request->report(), node_.context());
  if (!report.ok()) return call.Finish(report.status());
  // A full disk: refused before anything changes (RESOURCE_EXHAUSTED, "disk full").
  if (Status s = node_.store().AdmitWrite(); !s.ok()) return call.Finish(s);
  node_.Report(std::move(report).value(), Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* CaseService::Act(grpc::CallbackServerContext* context,
                                           const v1::CaseActionRequest* request,
                                           v1::Case* response) {
  Call call(context, &probe_, "/whistle.v1.CaseService/Act");
  call.set_case_id(request->case_id());
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = ValidateCaseId(request->case_id()); !s.ok()) return call.Finish(s);
  if (request->command().has_overdue()) {
    return call.Finish(
        Status::InvalidArgument("command.overdue: recorded by the node itself, not by callers"));
  }
  auto command = core::CheckCommand(std::move(caller).value(), request->command(), node_.context());
  if (!command.ok()) return call.Finish(command.status());
  if (Status s = node_.store().AdmitWrite(); !s.ok()) return call.Finish(s);
  node_.Act(request->case_id(), std::move(command).value(), Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* CaseService::Get(grpc::CallbackServerContext* context,
                                           const v1::GetCaseRequest* request, v1::Case* response) {
  Call call(context, &probe_, "/whistle.v1.CaseService/Get");
  call.set_case_id(request->case_id());
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  auto found = ReadCase(node_, caller->get(), request->case_id());
  if (found.ok()) *response = std::move(found).value();
  return call.Finish(found.status());
}

grpc::ServerUnaryReactor* CaseService::List(grpc::CallbackServerContext* context,
                                            const v1::ListCasesRequest* request,
                                            v1::ListCasesResponse* response) {
  Call call(context, &probe_, "/whistle.v1.CaseService/List");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = ValidateState(request->state()); !s.ok()) return call.Finish(s);
  if (Status s = ValidateOptionalId("jurisdiction_id", request->jurisdiction_id()); !s.ok()) {
    return call.Finish(s);
  }
  if (!request->page_token().empty()) {
    if (Status s = core::CheckId("page_token", request->page_token(), kMaxPageToken); !s.ok()) {
      return call.Finish(s);
    }
  }
  auto root = SubtreeRoot(node_, caller->get(), request->jurisdiction_id());
  if (!root.ok()) return call.Finish(root.status());
  auto page = node_.List(*root, request->state(), request->page_size(), request->page_token());
  if (page.ok()) *response = std::move(page).value();
  return call.Finish(page.status());
}

grpc::ServerUnaryReactor* CaseService::History(grpc::CallbackServerContext* context,
                                               const v1::GetHistoryRequest* request,
                                               v1::GetHistoryResponse* response) {
  Call call(context, &probe_, "/whistle.v1.CaseService/History");
  call.set_case_id(request->case_id());
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  auto found = ReadCase(node_, caller->get(), request->case_id());
  if (!found.ok()) return call.Finish(found.status());
  std::vector<int64_t> unreadable;
  auto entries = node_.History(request->case_id(), &unreadable);
  if (!entries.ok()) return call.Finish(entries.status());
  for (auto& e : *entries) *response->add_entries() = std::move(e);
  for (int64_t seq : unreadable) response->add_unreadable_seqs(seq);
  return call.Finish(Status::Ok());
}

grpc::ServerUnaryReactor* CaseService::Count(grpc::CallbackServerContext* context,
                                             const v1::CountCasesRequest* request,
                                             v1::CountCasesResponse* response) {
  Call call(context, &probe_, "/whistle.v1.CaseService/Count");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = ValidateOptionalId("jurisdiction_id", request->jurisdiction_id()); !s.ok()) {
    return call.Finish(s);
  }
  auto root = SubtreeRoot(node_, caller->get(), request->jurisdiction_id());
  if (!root.ok()) return call.Finish(root.status());
  auto counts = node_.Count(*root);
  if (counts.ok()) *response = std::move(counts).value();
  return call.Finish(counts.status());
}

grpc::ServerUnaryReactor* TopologyService::GetJurisdiction(
    grpc::CallbackServerContext* context, const v1::GetJurisdictionRequest* request,
    v1::JurisdictionView* response) {
  Call call(context, &probe_, "/whistle.v1.TopologyService/GetJurisdiction");
  // Any authenticated caller may read the topology (admin included): it is the
  // map every client needs, and holds no case data.
  auto caller = auth_.Authenticate(*context);
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = Admit(limiter_, call, caller->user()); !s.ok()) return call.Finish(s);
  if (Status s = ValidateOptionalId("id", request->id()); !s.ok()) return call.Finish(s);
  const core::Topology& topology = node_.topology();
  const v1::Jurisdiction* j =
      request->id().empty() ? &topology.root() : topology.Find(request->id());
  if (j == nullptr) {
    return call.Finish(Status::NotFound("id: unknown jurisdiction " + core::Quote(request->id())));
  }
  *response->mutable_jurisdiction() = *j;
  for (const auto* child : topology.Children(j->id())) *response->add_children() = *child;
  for (const auto* dept : topology.DepartmentsOf(j->id())) *response->add_departments() = *dept;
  for (const auto* up : topology.Path(j->id())) *response->add_path() = *up;
  response->set_grids_below(topology.GridsBelow(j->id()));
  return call.Finish(Status::Ok());
}

}  // namespace whistle::services
