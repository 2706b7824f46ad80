#include "services/inbox_service.h"

#include <charconv>

#include "core/text.h"
#include "services/call.h"
#include "services/identity.h"

namespace whistle::services {

namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;
constexpr size_t kMaxTokenLength = 2048;

std::string Hex(const std::string& raw) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : raw) {
    out += kDigits[ch >> 4];
    out += kDigits[ch & 15];
  }
  return out;
}

// The raw index key a page token stands for; INVALID_ARGUMENT naming the field.
StatusOr<std::string> AfterKey(const v1::CaseInboxRequest& request) {
  const std::string& hex = request.page_token();
  std::string out;
  if (hex.size() > kMaxTokenLength || hex.size() % 2 != 0) {
    return Status::InvalidArgument("page_token: not a token this server issued");
  }
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) {
      return Status::InvalidArgument("page_token: not a token this server issued");
    }
    out.push_back(static_cast<char>(value));
  }
  return out;
}

StatusOr<size_t> PageSize(const v1::CaseInboxRequest& request) {
  int n = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  if (n < 0 || n > kMaxPageSize) {
    return Status::InvalidArgument("page_size: must be 1.." + std::to_string(kMaxPageSize) +
                                   ", got " + std::to_string(request.page_size()));
  }
  return static_cast<size_t>(n);
}

}  // namespace

grpc::ServerUnaryReactor* InboxService::DepartmentCases(grpc::CallbackServerContext* context,
                                                        const v1::CaseInboxRequest* request,
                                                        v1::CaseInboxResponse* response) {
  Call call(context, &probe_, "/whistle.v1.InboxService/DepartmentCases");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  const v1::Caller& who = caller->get();
  if (who.role() != v1::ROLE_DEPARTMENT) {
    // "role": the token's claim (or, with --dev-header-identity, its header).
    return call.Finish(Status::PermissionDenied(
        "role: a department inbox is read by the department itself (role department); the "
        "caller's role is " +
        std::string(RoleName(who.role()))));
  }
  auto limit = PageSize(*request);
  if (!limit.ok()) return call.Finish(limit.status());
  auto after = AfterKey(*request);
  if (!after.ok()) return call.Finish(after.status());
  auto page = node_.store().DepartmentInbox(who.department_id(), *after, *limit);
  if (!page.ok()) return call.Finish(page.status());
  for (auto& row : page->rows) {
    v1::InboxItem* item = response->add_items();
    *item->mutable_case_() = std::move(row.c);
    item->set_pending(row.pending);
    item->set_report_in_by_ms(row.report_in_by_ms);
  }
  response->set_next_page_token(Hex(page->next_key));
  return call.Finish(Status::Ok());
}

grpc::ServerUnaryReactor* InboxService::ReportedCases(grpc::CallbackServerContext* context,
                                                      const v1::CaseInboxRequest* request,
                                                      v1::CaseInboxResponse* response) {
  Call call(context, &probe_, "/whistle.v1.InboxService/ReportedCases");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  auto limit = PageSize(*request);
  if (!limit.ok()) return call.Finish(limit.status());
  auto after = AfterKey(*request);
  if (!after.ok()) return call.Finish(after.status());
  auto page = node_.store().ReportedBy(caller->get().user(), *after, *limit);
  if (!page.ok()) return call.Finish(page.status());
  for (auto& c : page->cases) *response->add_items()->mutable_case_() = std::move(c);
  response->set_next_page_token(Hex(page->next_key));
  return call.Finish(Status::Ok());
}

// Staff and leaders of the notified level or above read its notices.
grpc::ServerUnaryReactor* InboxService::SupervisionNotices(grpc::CallbackServerContext* context,
                                                           const v1::NoticeInboxRequest* request,
                                                           v1::NoticeInboxResponse* response) {
  Call call(context, &probe_, "/whistle.v1.InboxService/SupervisionNotices");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  const v1::Caller& who = caller->get();
  const core::Topology& topology = node_.topology();
  const std::string& jid =
      request->jurisdiction_id().empty() ? who.jurisdiction_id() : request->jurisdiction_id();
  if (topology.Find(jid) == nullptr) {
    return call.Finish(
        Status::InvalidArgument("jurisdiction_id: unknown jurisdiction " + core::Quote(jid)));
  }
  if (who.role() != v1::ROLE_LEADER && who.role() != v1::ROLE_STAFF) {
    return call.Finish(Status::PermissionDenied(
        "supervision notices are read by staff and leaders of the notified level or above; "
        "the caller's role is " +
        v1::Role_Name(who.role())));
  }
  if (!topology.IsWithin(jid, who.jurisdiction_id())) {
    return call.Finish(Status::PermissionDenied("jurisdiction " + core::Quote(jid) +
                                                " lies outside the caller's jurisdiction " +
                                                core::Quote(who.jurisdiction_id())));
  }
  int n = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  if (n < 0 || n > kMaxPageSize) {
    return call.Finish(Status::InvalidArgument("page_size: must be 1.." +
                                               std::to_string(kMaxPageSize) + ", got " +
                                               std::to_string(request->page_size())));
  }
  v1::CaseInboxRequest token;
  token.set_page_token(request->page_token());
  auto after = AfterKey(token);
  if (!after.ok()) return call.Finish(after.status());
  auto page = node_.store().SupervisionNotices(jid, *after, static_cast<size_t>(n));
  if (!page.ok()) return call.Finish(page.status());
  for (auto& c : page->cases) {
    v1::NoticeItem* item = response->add_items();
    item->set_notice_to_id(c.notice_to_id());
    item->set_noticed_at_ms(c.noticed_at_ms());
    *item->mutable_deadlines_missed() = c.notice_missed();
    item->set_notices(c.notices());
    *item->mutable_case_() = std::move(c);
  }
  response->set_next_page_token(Hex(page->next_key));
  return call.Finish(Status::Ok());
}

}  // namespace whistle::services
