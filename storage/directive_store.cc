#include "storage/directive_store.h"

#include <algorithm>
#include <chrono>
#include <string_view>

#include "core/text.h"
#include "storage/keys.h"
#include "storage/raw.h"

namespace whistle::storage {

namespace {

using internal::Family;
using internal::Raw;

constexpr Family kF = Family::kDirectives;

std::string Id(std::string_view prefix, std::string_view id) {
  std::string k(prefix);
  k.append(id);
  return k;
}

std::string Sep(std::string_view prefix, std::string_view id) {
  std::string k = Id(prefix, id);
  k.push_back(keys::kSep);
  return k;
}

std::string ReceiptPrefix(std::string_view directive) { return Sep("r/", directive); }
std::string ReceiptKey(std::string_view directive, std::string_view unit) {
  return ReceiptPrefix(directive).append(unit);
}
std::string CountPrefix(std::string_view directive, std::string_view jurisdiction) {
  std::string k = Sep("c/", directive);
  k.append(jurisdiction);
  k.push_back(keys::kSep);
  return k;
}
std::string InboxPrefix(std::string_view unit) { return Sep("u/", unit); }
std::string InboxKey(std::string_view unit, v1::ReceiptState state, std::string_view directive) {
  std::string k = InboxPrefix(unit);
  k.push_back(static_cast<char>('0' + static_cast<int>(state)));
  k.push_back('/');
  k.append(directive);
  return k;
}
std::string ListPrefix(std::string_view jurisdiction) { return Sep("f/", jurisdiction); }

template <class M>
StatusOr<M> GetMessage(const Store& store, const std::string& key, const std::string& what) {
  std::string value;
  Status s = Raw::Get(store, kF, key, &value);
  if (s.code() == Code::kNotFound) return Status::NotFound(what + " not found");
  if (!s.ok()) return Status(s.code(), what + ": " + s.message());
  M m;
  if (!m.ParseFromString(value)) return Status::Internal(what + ": stored record does not parse");
  return m;
}

// Keys after `prefix + after` (exclusive) up to the end of `prefix`, as ids.
StatusOr<IdPage> ListIds(const Store& store, const std::string& prefix, const std::string& after,
                         size_t limit, std::string_view what) {
  IdPage page;
  if (limit == 0) return page;
  std::string start = prefix + after;
  bool more = false;
  Status s = Raw::Scan(store, kF, start, keys::PrefixEnd(prefix), what,
                       [&](std::string_view key, std::string_view) {
                         std::string_view rest = key.substr(prefix.size());
                         if (!after.empty() && rest == after) return true;
                         if (page.ids.size() == limit) {
                           more = true;
                           return false;
                         }
                         page.ids.emplace_back(rest);
                         return true;
                       });
  if (!s.ok()) return s;
  if (more) page.next = page.ids.back();
  return page;
}

}  // namespace

namespace {

void RecordDirectiveChange(Batch& batch, const v1::Directive& d) {
  // Change log (the live watch): the directive as its issuer's row sees it,
  // with whom it is addressed to (the watch shows it below the issuer too).
  v1::Change change;
  change.set_at_ms(d.updated_at_unix_ms() != 0 ? d.updated_at_unix_ms() : d.issued_at_unix_ms());
  change.add_jurisdiction_ids(d.issuer_jurisdiction_id());
  auto* dc = change.mutable_directive_change();
  dc->set_directive_id(d.id());
  dc->set_jurisdiction_id(d.issuer_jurisdiction_id());
  dc->set_version(d.version());
  dc->set_state(d.state());
  const v1::Targets& t = d.draft().targets();
  if (t.has_level()) dc->add_target_subtrees(t.level().subtree_id());
  for (const auto& id : t.jurisdictions().ids()) dc->add_target_units(id);
  for (const auto& id : t.departments().ids()) dc->add_target_units(id);
  batch.RecordChange(change);
}

}  // namespace

void PutDirective(Batch& batch, const v1::Directive& d) {
  Raw::Put(batch, kF, Id("d/", d.id()), d.SerializeAsString());
  RecordDirectiveChange(batch, d);
}

void PutDirectiveFromBelow(Batch& batch, const v1::Directive& d) {
  Raw::Put(batch, kF, Id("b/", d.id()), d.SerializeAsString());
  RecordDirectiveChange(batch, d);
}

void PutExpansion(Batch& batch, const std::string& directive_id,
                  const v1::DirectiveExpansion& cursor) {
  Raw::Put(batch, kF, Id("x/", directive_id), cursor.SerializeAsString());
}

void IndexDirective(Batch& batch, const std::string& jurisdiction,
                    const std::string& directive_id) {
  Raw::Put(batch, kF, ListPrefix(jurisdiction) + directive_id, "");
}

void RecordIssueRequest(Batch& batch, const std::string& user, const std::string& request_id,
                        const std::string& directive_id, const std::string& fingerprint) {
  Raw::Put(batch, kF, Sep("q/", user) + request_id,
           fingerprint.empty() ? directive_id : directive_id + '\0' + fingerprint);
}

void PutReceipt(Batch& batch, const v1::Receipt* before, const v1::Receipt& after) {
  Raw::Put(batch, kF, ReceiptKey(after.directive_id(), after.unit_id()), after.SerializeAsString());
  if (before != nullptr && before->state() == after.state()) return;
  if (before != nullptr) {
    Raw::Delete(batch, kF, InboxKey(before->unit_id(), before->state(), before->directive_id()));
  }
  Raw::Put(batch, kF, InboxKey(after.unit_id(), after.state(), after.directive_id()), "");
}

void AddProgress(Batch& batch, const std::string& directive_id, const std::string& jurisdiction,
                 const v1::ProgressCounts& delta) {
  const std::string prefix = CountPrefix(directive_id, jurisdiction);
  const int64_t fields[] = {delta.total(), delta.signed_(), delta.done(), delta.signed_late(),
                            delta.done_late()};
  bool any = false;
  for (int i = 0; i < 5; ++i) {
    if (fields[i] != 0) Raw::AddInt64(batch, kF, prefix + static_cast<char>('1' + i), fields[i]);
    any = any || fields[i] != 0;
  }
  if (!any) return;
  // Change log (the live watch): the row's counts moved by `delta`. No at_ms:
  // the store stamps it with the node's clock when written.
  v1::Change change;
  change.add_jurisdiction_ids(jurisdiction);
  auto* dc = change.mutable_directive_change();
  dc->set_directive_id(directive_id);
  dc->set_jurisdiction_id(jurisdiction);
  *dc->mutable_delta() = delta;
  batch.RecordChange(change);
}

void BumpChangeSeq(Batch& batch, const std::string& directive_id, const std::string& root) {
  Raw::AddInt64(batch, kF, CountPrefix(directive_id, root) + '6', 1);
}

void MarkCountsDirty(Batch& batch, const std::string& directive_id) {
  Raw::Put(batch, kF, Id("p/", directive_id), "");
}

void ClearCountsDirty(Batch& batch, const std::string& directive_id) {
  Raw::Delete(batch, kF, Id("p/", directive_id));
}

void PutChildCounts(Batch& batch, const std::string& directive_id, const std::string& child_root,
                    const v1::ChildCounts& counts) {
  Raw::Put(batch, kF, Sep("k/", directive_id) + child_root, counts.SerializeAsString());
}

void CountUpdateReceived(Batch& batch, const std::string& directive_id) {
  Raw::AddInt64(batch, kF, Id("m/", directive_id), 1);
}

StatusOr<std::vector<std::string>> DirtyCounts(const Store& store) {
  std::vector<std::string> ids;
  Status s = Raw::Scan(store, kF, "p/", keys::PrefixEnd("p/"), "read dirty counts",
                       [&](std::string_view key, std::string_view) {
                         ids.emplace_back(key.substr(2));
                         return true;
                       });
  if (!s.ok()) return s;
  return ids;
}

StatusOr<v1::ChildCounts> GetChildCounts(const Store& store, const std::string& directive_id,
                                         const std::string& child_root) {
  return GetMessage<v1::ChildCounts>(store, Sep("k/", directive_id) + child_root,
                                     "counts of " + child_root + " for " + directive_id);
}

int64_t CountUpdates(const Store& store, const std::string& directive_id) {
  std::string value;
  if (!Raw::Get(store, kF, Id("m/", directive_id), &value).ok()) return 0;
  return keys::DecodeInt64(value).value_or(0);
}

StatusOr<v1::Directive> GetDirective(const Store& store, const std::string& directive_id) {
  return GetMessage<v1::Directive>(store, Id("d/", directive_id), "directive " + directive_id);
}

StatusOr<v1::Directive> GetDirectiveFromBelow(const Store& store, const std::string& directive_id) {
  return GetMessage<v1::Directive>(store, Id("b/", directive_id), "directive " + directive_id);
}

StatusOr<v1::Receipt> GetReceipt(const Store& store, const std::string& directive_id,
                                 const std::string& unit_id) {
  return GetMessage<v1::Receipt>(store, ReceiptKey(directive_id, unit_id),
                                 "receipt of " + unit_id + " for directive " + directive_id);
}

StatusOr<std::string> FindIssueRequest(const Store& store, const std::string& user,
                                       const std::string& request_id) {
  auto record = FindIssueRecord(store, user, request_id);
  if (!record.ok()) return record.status();
  return std::move(record->directive_id);
}

StatusOr<IssueRequestRecord> FindIssueRecord(const Store& store, const std::string& user,
                                             const std::string& request_id) {
  std::string value;
  Status s = Raw::Get(store, kF, Sep("q/", user) + request_id, &value);
  if (s.code() == Code::kNotFound) return Status::NotFound("no issue " + request_id);
  if (!s.ok()) return s;
  IssueRequestRecord record;
  const size_t sep = value.find('\0');
  record.directive_id = value.substr(0, sep);
  if (sep != std::string::npos) record.fingerprint = value.substr(sep + 1);
  return record;
}

StatusOr<v1::DirectiveExpansion> GetExpansion(const Store& store, const std::string& directive_id) {
  return GetMessage<v1::DirectiveExpansion>(store, Id("x/", directive_id),
                                            "expansion of " + directive_id);
}

StatusOr<v1::ProgressCounts> GetProgress(const Store& store, const std::string& directive_id,
                                         const std::string& jurisdiction, int64_t* change_seq) {
  v1::ProgressCounts c;
  if (change_seq != nullptr) *change_seq = 0;
  const std::string prefix = CountPrefix(directive_id, jurisdiction);
  bool bad = false;
  Status s = Raw::Scan(store, kF, prefix, keys::PrefixEnd(prefix), "read progress",
                       [&](std::string_view key, std::string_view value) {
                         auto n = keys::DecodeInt64(value);
                         if (!n || key.size() != prefix.size() + 1) {
                           bad = true;
                           return false;
                         }
                         switch (key.back()) {
                           case '1':
                             c.set_total(*n);
                             break;
                           case '2':
                             c.set_signed_(*n);
                             break;
                           case '3':
                             c.set_done(*n);
                             break;
                           case '4':
                             c.set_signed_late(*n);
                             break;
                           case '5':
                             c.set_done_late(*n);
                             break;
                           case '6':  // the change sequence, read in the same scan
                             if (change_seq != nullptr) *change_seq = *n;
                             break;
                           default:
                             bad = true;
                             return false;
                         }
                         return true;
                       });
  if (!s.ok()) return s;
  if (bad) return Status::Internal("progress of " + directive_id + ": malformed count record");
  return c;
}

StatusOr<uint64_t> LastDirectiveSeq(const Store& store, const std::string& prefix) {
  // Keys only, no parsing: directives are few (thousands a year), read once at start-up.
  constexpr size_t kDigits = 12;
  const std::string start = Id("d/", prefix);
  uint64_t last = 0;
  Status s = Raw::Scan(store, kF, start, keys::PrefixEnd(start), "scan directive ids",
                       [&](std::string_view key, std::string_view) {
                         std::string_view rest = key.substr(start.size());
                         if (rest.size() != kDigits) return true;
                         uint64_t v = 0;
                         for (char ch : rest) {
                           if (ch < '0' || ch > '9') return true;
                           v = v * 10 + static_cast<uint64_t>(ch - '0');
                         }
                         last = std::max(last, v);
                         return true;
                       });
  if (!s.ok()) return s;
  return last;
}

StatusOr<std::vector<PendingExpansion>> IncompleteExpansions(const Store& store) {
  std::vector<PendingExpansion> out;
  std::vector<std::pair<std::string, v1::DirectiveExpansion>> cursors;
  bool parsed = true;
  Status s = Raw::Scan(store, kF, "x/", keys::PrefixEnd("x/"), "read expansions",
                       [&](std::string_view key, std::string_view value) {
                         v1::DirectiveExpansion x;
                         parsed = x.ParseFromArray(value.data(), static_cast<int>(value.size()));
                         if (!parsed) return false;
                         if (!x.complete()) cursors.emplace_back(key.substr(2), std::move(x));
                         return true;
                       });
  if (!s.ok()) return s;
  if (!parsed) return Status::Internal("expansion cursor: stored record does not parse");
  for (auto& [id, cursor] : cursors) {
    auto d = GetDirective(store, id);
    if (!d.ok()) return d.status();
    out.push_back({std::move(d).value(), std::move(cursor)});
  }
  return out;
}

Status ForEachDirective(const Store& store, const std::function<bool(const v1::Directive&)>& fn) {
  bool parsed = true;
  Status s = Raw::Scan(store, kF, "d/", keys::PrefixEnd("d/"), "read directives",
                       [&](std::string_view, std::string_view value) {
                         v1::Directive d;
                         parsed = d.ParseFromArray(value.data(), static_cast<int>(value.size()));
                         return parsed && fn(d);
                       });
  if (!s.ok()) return s;
  if (!parsed) return Status::Internal("directive: stored record does not parse");
  return Status::Ok();
}

StatusOr<IdPage> ListDirectiveIds(const Store& store, const std::string& jurisdiction,
                                  const std::string& after, size_t limit) {
  return ListIds(store, ListPrefix(jurisdiction), after, limit, "list directives");
}

StatusOr<IdPage> ListInbox(const Store& store, const std::string& unit, const std::string& after,
                           size_t limit) {
  // Keys are "<state digit>/<directive>": the page resumes on the full suffix.
  auto page = ListIds(store, InboxPrefix(unit), after, limit, "read inbox");
  if (!page.ok()) return page;
  IdPage out;
  out.next = page->next;
  for (auto& suffix : page->ids) {
    if (suffix.size() < 3 || suffix[1] != '/') return Status::Internal("malformed inbox record");
    out.ids.push_back(suffix.substr(2));
  }
  return out;
}

Status CheckInboxToken(const std::string& token) {
  constexpr size_t kMaxToken = 300;
  if (token.empty()) return Status::Ok();
  const Status bad = Status::InvalidArgument("page_token: not a token this server issued");
  if (token.size() < 3 || token[1] != '/') return bad;
  // A receipt state digit (PENDING, SIGNED or DONE), then a directive id.
  const int state = token[0] - '0';
  if (state <= v1::RECEIPT_STATE_UNSPECIFIED || !v1::ReceiptState_IsValid(state)) return bad;
  if (!core::CheckId("page_token", std::string_view(token).substr(2), kMaxToken).ok()) return bad;
  return Status::Ok();
}

StatusOr<ReceiptPage> ListReceipts(const Store& store, const std::string& directive_id,
                                   const std::string& after, size_t limit,
                                   const std::function<bool(const v1::Receipt&)>& keep) {
  ReceiptPage page;
  if (limit == 0) return page;
  const std::string prefix = ReceiptPrefix(directive_id);
  bool parsed = true;
  bool more = false;
  Status s = Raw::Scan(store, kF, prefix + after, keys::PrefixEnd(prefix), "list receipts",
                       [&](std::string_view key, std::string_view value) {
                         if (!after.empty() && key.substr(prefix.size()) == after) return true;
                         v1::Receipt r;
                         parsed = r.ParseFromArray(value.data(), static_cast<int>(value.size()));
                         if (!parsed) return false;
                         if (!keep(r)) return true;
                         if (page.receipts.size() == limit) {
                           more = true;
                           return false;
                         }
                         page.receipts.push_back(std::move(r));
                         return true;
                       });
  if (!s.ok()) return s;
  if (!parsed)
    return Status::Internal("receipt of " + directive_id + ": stored record does not parse");
  if (more) page.next = page.receipts.back().unit_id();
  return page;
}

}  // namespace whistle::storage
