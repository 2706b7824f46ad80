// Read paths of Node: listing and counting over a jurisdiction subtree. They
// read acknowledged state from the store and the in-memory counts, never the
// actors, so reads do not queue behind writes.
#include <charconv>

#include "actors/node.h"
#include "actors/node_context.h"

namespace whistle::actors {

namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;

std::string Hex(const std::string& raw) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : raw) {
    out += kDigits[ch >> 4];
    out += kDigits[ch & 15];
  }
  return out;
}

bool Unhex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) return false;
    out->push_back(static_cast<char>(value));
  }
  return true;
}

// Token "<subtree position>.<hex of the last index key>".
bool ParseToken(const std::string& token, size_t* position, std::string* after_key) {
  if (token.empty()) return true;
  auto dot = token.find('.');
  if (dot == std::string::npos) return false;
  auto [p, ec] = std::from_chars(token.data(), token.data() + dot, *position);
  return ec == std::errc() && p == token.data() + dot && Unhex(token.substr(dot + 1), after_key);
}

}  // namespace

StatusOr<v1::ListCasesResponse> Node::List(const std::string& jurisdiction_id, v1::CaseState state,
                                           int page_size, const std::string& page_token) const {
  if (page_size == 0) page_size = kDefaultPageSize;
  if (page_size < 0 || page_size > kMaxPageSize) {
    return Status::InvalidArgument("page_size: must be 1.." + std::to_string(kMaxPageSize) +
                                   ", got " + std::to_string(page_size));
  }
  size_t position = 0;
  std::string after_key;
  if (!ParseToken(page_token, &position, &after_key)) {
    return Status::InvalidArgument("page_token: not a token this server issued");
  }
  NodeContext& ctx = *impl_->ctx;
  auto subtree = ctx.topology().Subtree(jurisdiction_id);
  v1::ListCasesResponse out;
  // Two positions per jurisdiction: the cases it owns here, then the
  // read-only copies of those it owns on other nodes.
  const size_t end = 2 * subtree.size();
  for (; position < end; ++position, after_key.clear()) {
    const std::string& owner = subtree[position / 2]->id();
    const bool copies = position % 2 == 1;
    auto counts = copies ? ctx.CopyCountsOf(owner) : ctx.CountsOf(owner);
    int64_t have = 0;
    for (size_t s = 1; s < counts.size(); ++s) {
      if (state == v1::CASE_STATE_UNSPECIFIED || static_cast<int>(s) == state) have += counts[s];
    }
    if (have <= 0) continue;  // skip the store for empty jurisdictions
    // An unreadable case takes a slot of the page (named in
    // unreadable_case_ids), so a page of damaged records still moves on.
    auto filled = [&out] { return out.cases_size() + out.unreadable_case_ids_size(); };
    std::string next_key;
    do {
      size_t want = static_cast<size_t>(page_size - filled());
      auto page = ctx.store().ListByOwner(owner, state, after_key, want, copies);
      if (!page.ok()) return page.status();
      for (auto& c : page->cases) {
        if (copies) c.set_read_only(true);
        *out.add_cases() = std::move(c);
      }
      for (auto& id : page->unreadable) *out.add_unreadable_case_ids() = std::move(id);
      next_key = std::move(page->next_key);
      after_key = next_key;
    } while (!next_key.empty() && filled() < page_size);
    if (filled() >= page_size) {
      if (!next_key.empty()) {
        out.set_next_page_token(std::to_string(position) + "." + Hex(next_key));
      } else if (position + 1 < end) {
        out.set_next_page_token(std::to_string(position + 1) + ".");
      }
      break;
    }
  }
  return out;
}

StatusOr<v1::CountCasesResponse> Node::Count(const std::string& jurisdiction_id) const {
  NodeContext& ctx = *impl_->ctx;
  std::array<int64_t, v1::CaseState_ARRAYSIZE> total{};
  for (const v1::Jurisdiction* j : ctx.topology().Subtree(jurisdiction_id)) {
    auto counts = ctx.CountsOf(j->id());
    auto copies = ctx.CopyCountsOf(j->id());
    for (size_t s = 0; s < total.size(); ++s) total[s] += counts[s] + copies[s];
  }
  v1::CountCasesResponse out;
  for (size_t s = 1; s < total.size(); ++s) {
    auto* row = out.add_counts();
    row->set_state(static_cast<v1::CaseState>(s));
    row->set_count(total[s]);
  }
  return out;
}

}  // namespace whistle::actors
