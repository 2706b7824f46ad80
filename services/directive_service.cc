#include "services/directive_service.h"

#include <chrono>

#include "actors/directives.h"
#include "core/directive.h"
#include "core/text.h"
#include "services/access.h"
#include "services/call.h"
#include "services/identity.h"
#include "storage/directive_store.h"

namespace whistle::services {

namespace {

constexpr size_t kMaxIdLength = 128;

Status ValidateDirectiveId(const std::string& id) {
  if (id.empty()) return Status::InvalidArgument("directive_id: required");
  return core::CheckId("directive_id", id, kMaxIdLength);
}

// The unit a sign/complete/inbox is for: the request's, or the caller's own.
StatusOr<std::string> UnitOf(const v1::Caller& caller, const std::string& requested) {
  std::string unit = requested;
  if (unit.empty()) {
    unit = caller.role() == v1::ROLE_DEPARTMENT ? caller.department_id() : caller.jurisdiction_id();
  }
  if (Status s = core::CheckId("unit_id", unit, kMaxIdLength); !s.ok()) return s;
  return unit;
}

Status ActsFor(const v1::Caller& caller, const std::string& unit, const core::Topology& topology) {
  if (topology.Find(unit) == nullptr && topology.FindDepartment(unit) == nullptr) {
    return Status::InvalidArgument("unit_id: unknown unit " + core::Quote(unit));
  }
  if (!core::ActsFor(caller, unit, topology)) {
    return Status::PermissionDenied("unit_id: the caller does not act for unit " +
                                    core::Quote(unit));
  }
  return Status::Ok();
}

// A caller sees a directive issued in its subtree, or addressed to units in
// it (a department: addressed to itself).
Status CheckCanSee(const actors::Directives& dirs, const v1::Caller& caller, const v1::Directive& d,
                   const core::Topology& topology) {
  if (caller.role() == v1::ROLE_DEPARTMENT) {
    if (dirs.Receipt(d.id(), caller.department_id()).ok()) return Status::Ok();
  } else if (!caller.jurisdiction_id().empty()) {
    if (topology.IsWithin(d.issuer_jurisdiction_id(), caller.jurisdiction_id())) {
      return Status::Ok();
    }
    auto row = dirs.Row(d, caller.jurisdiction_id(), 0);
    if (row.ok() && row->counts().total() > 0) return Status::Ok();
  }
  return Status::PermissionDenied("directive " + d.id() +
                                  " is neither issued in nor addressed to the caller's "
                                  "jurisdiction");
}

StatusOr<v1::Directive> ReadDirective(const actors::Node& node, actors::Directives& dirs,
                                      const v1::Caller& caller, const std::string& id) {
  if (Status s = ValidateDirectiveId(id); !s.ok()) return s;
  auto d = dirs.Get(id);
  if (!d.ok()) return d.status();
  if (Status s = CheckCanSee(dirs, caller, *d, node.topology()); !s.ok()) return s;
  return d;
}

// The subtree a read covers: the request's, or the caller's own. A
// department has no subtree: it reads directives through Get and Inbox.
StatusOr<std::string> SubtreeRoot(const actors::Node& node, const v1::Caller& caller,
                                  const std::string& requested) {
  if (caller.role() == v1::ROLE_DEPARTMENT) {
    return Status::PermissionDenied(
        "jurisdiction_id: a department reads directives through Get and Inbox");
  }
  std::string root = requested.empty() ? caller.jurisdiction_id() : requested;
  if (Status s = core::CheckId("jurisdiction_id", root, kMaxIdLength); !s.ok()) return s;
  if (Status s = CheckCanReadSubtree(caller, root, node.topology()); !s.ok()) return s;
  return root;
}

// ALREADY_EXISTS when the issuer already used `request_id` for a directive
// with another draft (a retry with the same draft is answered by Issue).
Status CheckRequestIdUnused(actors::Node& node, const core::CheckedDraft& draft,
                            const std::string& request_id) {
  if (request_id.empty()) return Status::Ok();
  const std::string& user = draft.issuer().user();
  auto record = storage::FindIssueRecord(node.store(), user, request_id);
  if (record.status().code() == Code::kNotFound) return Status::Ok();
  if (!record.ok()) return record.status();
  std::string fingerprint = record->fingerprint;
  if (fingerprint.empty()) {
    // Recorded without a fingerprint: compared with the directive as issued
    // while it is unamended (an amended one is taken as the same).
    auto d = storage::GetDirective(node.store(), record->directive_id);
    if (!d.ok()) return d.status();
    if (d->version() != 1) return Status::Ok();
    fingerprint = core::DraftFingerprint(d->draft());
  }
  if (fingerprint == core::DraftFingerprint(draft.get())) return Status::Ok();
  return core::IssueRequestReused(user, request_id, record->directive_id);
}

template <class T>
actors::Reply<T> Respond(Call call, T* response) {
  return [call, response](StatusOr<T> result) {
    if (result.ok()) *response = std::move(result).value();
    call.Finish(result.status());
  };
}

// Get read where `at`'s row is counted (over the node links when another node
// hosts it): also finds a directive numbered on a node below, which never
// comes up here. Without `at` ("": the directive is not held here), the
// caller's row, shown as the issuer's when the caller is at or above it.
grpc::ServerUnaryReactor* GetVia(actors::Node& node, Call call, const v1::Caller& caller,
                                 const std::string& id, const std::string& at,
                                 v1::DirectiveView* response) {
  v1::GetProgressRequest request;
  request.set_directive_id(id);
  request.set_jurisdiction_id(at.empty() ? caller.jurisdiction_id() : at);
  const core::Topology& topology = node.topology();
  auto answer = [call, response, &topology, relabel = at.empty(),
                 mine = caller.jurisdiction_id()](StatusOr<v1::GetProgressResponse> progress) {
    if (!progress.ok()) {
      call.Finish(progress.status());
      return;
    }
    v1::ProgressRow row = progress->total();
    // Every target lies in the issuer's subtree: at or above it, the same counts.
    const std::string& issuer = progress->directive().issuer_jurisdiction_id();
    const v1::Jurisdiction* j = topology.Find(issuer);
    if (relabel && j != nullptr && topology.IsWithin(issuer, mine)) {
      row.set_jurisdiction_id(issuer);
      row.set_name(j->name());
      row.set_level(j->level());
    }
    *response->mutable_directive() = progress->directive();
    *response->mutable_progress() = std::move(row);
    call.Finish(Status::Ok());
  };
  node.directives().ProgressOf(caller, std::move(request), 0, std::move(answer));
  return call.reactor();
}

}  // namespace

grpc::ServerUnaryReactor* DirectiveService::Issue(grpc::CallbackServerContext* context,
                                                  const v1::IssueDirectiveRequest* request,
                                                  v1::IssueDirectiveResponse* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/Issue");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (!request->has_draft()) return call.Finish(Status::InvalidArgument("draft: required"));
  if (!request->request_id().empty()) {
    if (Status s = core::CheckId("request_id", request->request_id(), kMaxIdLength); !s.ok()) {
      return call.Finish(s);
    }
  }
  auto draft = core::CheckIssue(*caller, request->draft(), node_.context(), node_.clock().NowMs());
  if (!draft.ok()) return call.Finish(draft.status());
  if (Status s = CheckRequestIdUnused(node_, *draft, request->request_id()); !s.ok()) {
    return call.Finish(s);
  }
  // Issued on the node hosting the issuer's jurisdiction (over the links when
  // that is another node): numbered and deduped there, every target below it.
  node_.directives().IssueOf(std::move(draft).value(), request->request_id(), 0,
                             Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* DirectiveService::Amend(grpc::CallbackServerContext* context,
                                                  const v1::AmendDirectiveRequest* request,
                                                  v1::Directive* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/Amend");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = ValidateDirectiveId(request->directive_id()); !s.ok()) return call.Finish(s);
  if (!request->has_amend()) return call.Finish(Status::InvalidArgument("amend: required"));
  node_.directives().Amend(request->directive_id(), caller->get(), request->amend(),
                           Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* DirectiveService::Cancel(grpc::CallbackServerContext* context,
                                                   const v1::CancelDirectiveRequest* request,
                                                   v1::Directive* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/Cancel");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = ValidateDirectiveId(request->directive_id()); !s.ok()) return call.Finish(s);
  if (!request->has_cancel()) return call.Finish(Status::InvalidArgument("cancel: required"));
  node_.directives().Cancel(request->directive_id(), caller->get(), request->cancel(),
                            Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* DirectiveService::Sign(grpc::CallbackServerContext* context,
                                                 const v1::SignDirectiveRequest* request,
                                                 v1::ReceiptView* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/Sign");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = ValidateDirectiveId(request->directive_id()); !s.ok()) return call.Finish(s);
  auto unit = UnitOf(caller->get(), request->unit_id());
  if (!unit.ok()) return call.Finish(unit.status());
  if (Status s = ActsFor(caller->get(), *unit, node_.topology()); !s.ok()) return call.Finish(s);
  node_.directives().Sign(request->directive_id(), *unit, caller->get(), request->sign(),
                          Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* DirectiveService::Complete(grpc::CallbackServerContext* context,
                                                     const v1::CompleteDirectiveRequest* request,
                                                     v1::ReceiptView* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/Complete");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = ValidateDirectiveId(request->directive_id()); !s.ok()) return call.Finish(s);
  auto unit = UnitOf(caller->get(), request->unit_id());
  if (!unit.ok()) return call.Finish(unit.status());
  if (Status s = ActsFor(caller->get(), *unit, node_.topology()); !s.ok()) return call.Finish(s);
  node_.directives().Complete(request->directive_id(), *unit, caller->get(), request->complete(),
                              Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* DirectiveService::Get(grpc::CallbackServerContext* context,
                                                const v1::GetDirectiveRequest* request,
                                                v1::DirectiveView* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/Get");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  auto& dirs = node_.directives();
  const v1::Caller& c = caller->get();
  if (c.role() == v1::ROLE_DEPARTMENT) {
    // Its receipt, which says the directive is addressed to it, lives on the node hosting it.
    const std::string j = core::UnitJurisdiction(c.department_id(), node_.topology());
    if (!node_.placement().Hosts(j)) {
      return call.Finish(Status::FailedPrecondition(
          "directive_id: a department reads a directive on the node hosting it (" + j +
          ") or in its inbox (Inbox, from any node)"));
    }
  }
  if (Status s = ValidateDirectiveId(request->directive_id()); !s.ok()) return call.Finish(s);
  // A jurisdiction's reader may be answered by another node; a department only here.
  const bool reader = c.role() != v1::ROLE_DEPARTMENT && !c.jurisdiction_id().empty();
  auto d = dirs.Get(request->directive_id());
  if (reader && !d.ok() && d.status().code() == Code::kNotFound) {
    return GetVia(node_, call, c, request->directive_id(), "", response);
  }
  if (!d.ok()) return call.Finish(d.status());
  // Progress of the issuer's subtree when the caller is at or above it, else of the caller's.
  const std::string& mine = c.jurisdiction_id();
  const std::string& at = node_.topology().IsWithin(d->issuer_jurisdiction_id(), mine)
                              ? d->issuer_jurisdiction_id()
                              : mine;
  // That row, and whether the caller may see the directive, are known where
  // `at` and the caller's jurisdiction are hosted.
  const core::Placement& placement = node_.placement();
  if (reader && (!placement.Hosts(at) || !placement.Hosts(mine))) {
    return GetVia(node_, call, c, request->directive_id(), at, response);
  }
  if (Status s = CheckCanSee(dirs, c, *d, node_.topology()); !s.ok()) return call.Finish(s);
  auto row = dirs.Row(*d, at, node_.clock().NowMs());
  if (!row.ok()) return call.Finish(row.status());
  *response->mutable_directive() = std::move(d).value();
  *response->mutable_progress() = std::move(row).value();
  return call.Finish(Status::Ok());
}

grpc::ServerUnaryReactor* DirectiveService::List(grpc::CallbackServerContext* context,
                                                 const v1::ListDirectivesRequest* request,
                                                 v1::ListDirectivesResponse* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/List");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  auto root = SubtreeRoot(node_, caller->get(), request->jurisdiction_id());
  if (!root.ok()) return call.Finish(root.status());
  // A jurisdiction hosted by a child node is read there, over the node links.
  v1::ListDirectivesRequest resolved = *request;
  resolved.set_jurisdiction_id(*root);
  node_.directives().ListOf(caller->get(), std::move(resolved), 0, Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* DirectiveService::Progress(grpc::CallbackServerContext* context,
                                                     const v1::GetProgressRequest* request,
                                                     v1::GetProgressResponse* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/Progress");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = ValidateDirectiveId(request->directive_id()); !s.ok()) return call.Finish(s);
  auto root = SubtreeRoot(node_, caller->get(), request->jurisdiction_id());
  if (!root.ok()) return call.Finish(root.status());
  // Read where the subtree's counts are: here, or over the node links.
  v1::GetProgressRequest resolved = *request;
  resolved.set_jurisdiction_id(*root);
  node_.directives().ProgressOf(caller->get(), std::move(resolved), 0, Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* DirectiveService::ListTargets(grpc::CallbackServerContext* context,
                                                        const v1::ListTargetsRequest* request,
                                                        v1::ListTargetsResponse* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/ListTargets");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  if (!v1::ReceiptState_IsValid(request->state())) {
    return call.Finish(
        Status::InvalidArgument("state: unknown value " + std::to_string(request->state())));
  }
  auto& dirs = node_.directives();
  auto d = ReadDirective(node_, dirs, caller->get(), request->directive_id());
  // Not held here (numbered on a node below: ListTargets finds it), or not
  // addressed into the caller's jurisdiction as far as this node counts,
  // which hosts no part of it: the units listed are the caller's own anyway.
  const bool seen_elsewhere = d.status().code() == Code::kPermissionDenied &&
                              !node_.placement().Hosts(caller->get().jurisdiction_id());
  if (!d.ok() && d.status().code() != Code::kNotFound && !seen_elsewhere) {
    return call.Finish(d.status());
  }
  auto root = SubtreeRoot(node_, caller->get(), request->jurisdiction_id());
  if (!root.ok()) return call.Finish(root.status());
  // A subtree hosted by a child node is read there, over the node links.
  v1::ListTargetsRequest resolved = *request;
  resolved.set_jurisdiction_id(*root);
  dirs.ListTargets(caller->get(), std::move(resolved), 0, Respond(call, response));
  return call.reactor();
}

grpc::ServerUnaryReactor* DirectiveService::Inbox(grpc::CallbackServerContext* context,
                                                  const v1::InboxRequest* request,
                                                  v1::InboxResponse* response) {
  Call call(context, &probe_, "/whistle.v1.DirectiveService/Inbox");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  auto unit = UnitOf(caller->get(), request->unit_id());
  if (!unit.ok()) return call.Finish(unit.status());
  const core::Topology& topology = node_.topology();
  // The unit itself, or a leader or staff member above it, may read its inbox.
  const v1::Caller& c = caller->get();
  const bool supervises =
      (c.role() == v1::ROLE_LEADER || c.role() == v1::ROLE_STAFF) &&
      topology.IsWithin(core::UnitJurisdiction(*unit, topology), c.jurisdiction_id());
  if (!supervises) {
    if (Status s = ActsFor(c, *unit, topology); !s.ok()) return call.Finish(s);
  }
  if (Status s = storage::CheckInboxToken(request->page_token()); !s.ok()) return call.Finish(s);
  // A unit hosted by another node: its inbox is read there, over the links.
  v1::InboxRequest resolved = *request;
  resolved.set_unit_id(*unit);
  node_.directives().InboxOf(c, std::move(resolved), 0, Respond(call, response));
  return call.reactor();
}

}  // namespace whistle::services
