// Read paths of Directives: acknowledged state straight from the store,
// never through the shards, so reads do not queue behind writes.
#include "actors/directive_context.h"
#include "core/text.h"
#include "storage/directive_store.h"

namespace whistle::actors {

namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;
constexpr size_t kMaxToken = 300;

StatusOr<size_t> PageSize(int page_size) {
  if (page_size == 0) return static_cast<size_t>(kDefaultPageSize);
  if (page_size < 0 || page_size > kMaxPageSize) {
    return Status::InvalidArgument("page_size: must be 1.." + std::to_string(kMaxPageSize) +
                                   ", got " + std::to_string(page_size));
  }
  return static_cast<size_t>(page_size);
}

Status CheckToken(const std::string& token) {
  if (token.empty()) return Status::Ok();
  return core::CheckText("page_token", token, kMaxToken);
}

}  // namespace

StatusOr<v1::Directive> Directives::Get(const std::string& id) const {
  auto d = storage::GetDirective(impl_->ctx->store(), id);
  if (!d.ok() && d.status().code() == Code::kNotFound) {
    return Status::NotFound("directive_id: unknown directive " + core::Quote(id));
  }
  return d;
}

StatusOr<v1::Receipt> Directives::Receipt(const std::string& id, const std::string& unit) const {
  return storage::GetReceipt(impl_->ctx->store(), id, unit);
}

StatusOr<v1::ProgressRow> Directives::Row(const v1::Directive& d, const std::string& jurisdiction,
                                          int64_t now_ms) const {
  auto counts = storage::GetProgress(impl_->ctx->store(), d.id(), jurisdiction);
  if (!counts.ok()) return counts.status();
  v1::ProgressRow row;
  row.set_jurisdiction_id(jurisdiction);
  if (const v1::Jurisdiction* j = impl_->ctx->topology().Find(jurisdiction)) {
    row.set_name(j->name());
    row.set_level(j->level());
  } else if (const v1::Department* dept = impl_->ctx->topology().FindDepartment(jurisdiction)) {
    row.set_name(dept->name());  // level stays UNSPECIFIED: a department's row
  }
  row.set_overdue(core::Overdue(d, *counts, now_ms));
  *row.mutable_counts() = std::move(counts).value();
  return row;
}

StatusOr<v1::GetProgressResponse> Directives::Progress(const v1::Directive& d,
                                                       const std::string& jurisdiction) const {
  const int64_t now = impl_->ctx->NowMs();
  v1::GetProgressResponse out;
  *out.mutable_directive() = d;
  out.set_as_of_unix_ms(now);
  out.set_count_updates_received(storage::CountUpdates(impl_->ctx->store(), d.id()));
  auto total = Row(d, jurisdiction, now);
  if (!total.ok()) return total.status();
  *out.mutable_total() = std::move(total).value();
  const core::Topology& topology = impl_->ctx->topology();
  std::vector<std::string> parts;
  for (const v1::Jurisdiction* child : topology.Children(jurisdiction))
    parts.push_back(child->id());
  for (const v1::Department* dept : topology.DepartmentsOf(jurisdiction)) {
    parts.push_back(dept->id());
  }
  for (const auto& part : parts) {
    auto row = Row(d, part, now);
    if (!row.ok()) return row.status();
    if (row->counts().total() > 0) *out.add_children() = std::move(row).value();
  }
  return out;
}

StatusOr<v1::ListDirectivesResponse> Directives::List(const std::string& jurisdiction,
                                                      int page_size,
                                                      const std::string& page_token) const {
  auto size = PageSize(page_size);
  if (!size.ok()) return size.status();
  if (Status s = CheckToken(page_token); !s.ok()) return s;
  auto page = storage::ListDirectiveIds(impl_->ctx->store(), jurisdiction, page_token, *size);
  if (!page.ok()) return page.status();
  const int64_t now = impl_->ctx->NowMs();
  v1::ListDirectivesResponse out;
  for (const auto& id : page->ids) {
    auto d = Get(id);
    if (!d.ok()) return d.status();
    auto row = Row(*d, jurisdiction, now);
    if (!row.ok()) return row.status();
    auto* view = out.add_directives();
    *view->mutable_directive() = std::move(d).value();
    *view->mutable_progress() = std::move(row).value();
  }
  out.set_next_page_token(page->next);
  return out;
}

StatusOr<v1::ListTargetsResponse> Directives::Targets(const v1::Directive& d,
                                                      const std::string& jurisdiction,
                                                      v1::ReceiptState state, int page_size,
                                                      const std::string& page_token) const {
  auto size = PageSize(page_size);
  if (!size.ok()) return size.status();
  if (Status s = CheckToken(page_token); !s.ok()) return s;
  const core::Topology& topology = impl_->ctx->topology();
  auto page = storage::ListReceipts(
      impl_->ctx->store(), d.id(), page_token, *size, [&](const v1::Receipt& r) {
        return (state == v1::RECEIPT_STATE_UNSPECIFIED || r.state() == state) &&
               topology.IsWithin(r.jurisdiction_id(), jurisdiction);
      });
  if (!page.ok()) return page.status();
  v1::ListTargetsResponse out;
  out.set_directive_version(d.version());
  for (auto& r : page->receipts) *out.add_receipts() = std::move(r);
  out.set_next_page_token(page->next);
  return out;
}

StatusOr<v1::InboxResponse> Directives::Inbox(const std::string& unit, int page_size,
                                              const std::string& page_token) const {
  auto size = PageSize(page_size);
  if (!size.ok()) return size.status();
  if (Status s = storage::CheckInboxToken(page_token); !s.ok()) return s;
  auto page = storage::ListInbox(impl_->ctx->store(), unit, page_token, *size);
  if (!page.ok()) return page.status();
  v1::InboxResponse out;
  for (const auto& id : page->ids) {
    auto d = Get(id);
    if (!d.ok()) return d.status();
    auto r = Receipt(id, unit);
    if (!r.ok()) return r.status();
    auto* item = out.add_items();
    *item->mutable_directive() = std::move(d).value();
    *item->mutable_receipt() = std::move(r).value();
  }
  out.set_next_page_token(page->next);
  return out;
}

}  // namespace whistle::actors
