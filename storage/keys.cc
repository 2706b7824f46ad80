#include "storage/keys.h"

#include <charconv>
#include <cstdio>

namespace whistle::storage::keys {
namespace {

// Fixed width keeps numeric order equal to byte order.
std::string Digits(int64_t v, int width) {
  char buf[32];
  int n = std::snprintf(buf, sizeof(buf), "%0*lld", width, static_cast<long long>(v));
  return std::string(buf, n);
}

std::optional<int64_t> ParseDigits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

constexpr size_t kStateWidth = 2;
constexpr size_t kDueWidth = 16;

}  // namespace

std::string Case(std::string_view case_id) { return std::string(case_id); }

std::string HistoryPrefix(std::string_view case_id) {
  std::string k(case_id);
  k.push_back(kSep);
  return k;
}

namespace {

// "<prefix>\0": ids end in a separator so "a" never prefix-matches "a/b".
std::string Prefixed(std::string_view prefix, std::string_view id) {
  std::string k(prefix);
  k.append(id);
  k.push_back(kSep);
  return k;
}

// 8 bytes big-endian: byte order is numeric order.
std::string WithSeq(std::string key, uint64_t seq) {
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(seq >> shift));
  return key;
}

}  // namespace

std::string History(std::string_view case_id, uint64_t seq) {
  return WithSeq(HistoryPrefix(case_id), seq);
}

std::string OutboxPrefix(std::string_view peer) { return Prefixed("o/", peer); }

std::string Outbox(std::string_view peer, uint64_t seq) { return WithSeq(OutboxPrefix(peer), seq); }

std::optional<uint64_t> SeqOfOutbox(std::string_view key) {
  if (key.size() < 8) return std::nullopt;
  uint64_t v = 0;
  for (char c : key.substr(key.size() - 8)) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

std::string Inbox(std::string_view peer) { return "i/" + std::string(peer); }

std::string OwnerPrefix(std::string_view owner) { return Prefixed("o/", owner); }

namespace {
// "<prefix><state>/": one state of an owner, in the owner or the copy index.
std::string WithState(std::string prefix, int state) {
  prefix.append(Digits(state, kStateWidth));
  prefix.push_back('/');
  return prefix;
}
}  // namespace

std::string OwnerStatePrefix(std::string_view owner, int state) {
  return WithState(OwnerPrefix(owner), state);
}

std::string OwnerIndex(std::string_view owner, int state, std::string_view case_id) {
  return OwnerStatePrefix(owner, state).append(case_id);
}

std::string CopyPrefix(std::string_view owner) { return Prefixed("y/", owner); }

std::string CopyStatePrefix(std::string_view owner, int state) {
  return WithState(CopyPrefix(owner), state);
}

std::string CopyIndex(std::string_view owner, int state, std::string_view case_id) {
  return CopyStatePrefix(owner, state).append(case_id);
}

std::string_view CaseIdOfOwnerIndex(std::string_view key) {
  size_t sep = key.find(kSep);
  if (sep == std::string_view::npos) return {};
  size_t start = sep + 1 + kStateWidth + 1;
  if (start >= key.size()) return {};
  return key.substr(start);
}

std::string Request(std::string_view reporter, std::string_view request_id) {
  std::string k = "r/";
  k.append(reporter);
  k.push_back(kSep);
  k.append(request_id);
  return k;
}

std::string Timer(int64_t due_ms, std::string_view case_id) {
  std::string k = Digits(due_ms, kDueWidth);
  k.push_back('/');
  k.append(case_id);
  return k;
}

std::optional<ParsedTimer> ParseTimer(std::string_view key) {
  if (key.size() < kDueWidth + 2 || key[kDueWidth] != '/') return std::nullopt;
  auto due = ParseDigits(key.substr(0, kDueWidth));
  if (!due) return std::nullopt;
  return ParsedTimer{*due, key.substr(kDueWidth + 1)};
}

namespace {
std::string CountKey(std::string_view prefix, std::string_view owner, int state) {
  std::string k(prefix);
  k.append(owner);
  k.push_back(kSep);
  k.append(Digits(state, kStateWidth));
  return k;
}
}  // namespace

std::string Count(std::string_view owner, int state) {
  return CountKey(kCountPrefix, owner, state);
}

std::string CopyCount(std::string_view owner, int state) {
  return CountKey(kCopyCountPrefix, owner, state);
}

std::optional<ParsedCount> ParseCount(std::string_view key, std::string_view prefix) {
  if (!key.starts_with(prefix)) return std::nullopt;
  key.remove_prefix(prefix.size());
  size_t sep = key.find(kSep);
  if (sep == std::string_view::npos || key.size() - sep - 1 != kStateWidth) return std::nullopt;
  auto state = ParseDigits(key.substr(sep + 1));
  if (!state) return std::nullopt;
  return ParsedCount{key.substr(0, sep), static_cast<int>(*state)};
}

std::string EncodeInt64(int64_t v) {
  auto u = static_cast<uint64_t>(v);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(u >> (8 * i));
  return out;
}

std::optional<int64_t> DecodeInt64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  return static_cast<int64_t>(u);
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c != 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return end;
}

}  // namespace whistle::storage::keys
