// Key encoding of the Store (layout in store.h). Internal to storage/: kept
// apart from store.cc so the byte layout can be unit-tested without a database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace whistle::storage::keys {

inline constexpr char kSep = '\0';

std::string Case(std::string_view case_id);
std::string History(std::string_view case_id, uint64_t seq);
// Every history key of `case_id` starts with this.
std::string HistoryPrefix(std::string_view case_id);

std::string OwnerIndex(std::string_view owner, int state, std::string_view case_id);
// "o/<owner>\0": every state of an owner.
std::string OwnerPrefix(std::string_view owner);
// "o/<owner>\0<state>/": one state of an owner.
std::string OwnerStatePrefix(std::string_view owner, int state);
// Case id at the end of an owner index key; empty if malformed.
std::string_view CaseIdOfOwnerIndex(std::string_view key);
// The same index over the read-only copies this node keeps of cases owned on
// other nodes: "y/<owner>\0<state>/<case id>" (CaseIdOfOwnerIndex reads it).
std::string CopyIndex(std::string_view owner, int state, std::string_view case_id);
std::string CopyPrefix(std::string_view owner);
std::string CopyStatePrefix(std::string_view owner, int state);

std::string Request(std::string_view reporter, std::string_view request_id);

std::string Timer(int64_t due_ms, std::string_view case_id);
struct ParsedTimer {
  int64_t due_ms;
  std::string_view case_id;
};
std::optional<ParsedTimer> ParseTimer(std::string_view key);

inline constexpr std::string_view kCountPrefix = "count/";
std::string Count(std::string_view owner, int state);
struct ParsedCount {
  std::string_view owner;
  int state;
};
// `prefix`: kCountPrefix (owned cases) or kCopyCountPrefix (copies).
std::optional<ParsedCount> ParseCount(std::string_view key, std::string_view prefix = kCountPrefix);
inline constexpr std::string_view kCopyCountPrefix = "copycount/";
std::string CopyCount(std::string_view owner, int state);

std::string Outbox(std::string_view peer, uint64_t seq);
std::string OutboxPrefix(std::string_view peer);
std::optional<uint64_t> SeqOfOutbox(std::string_view key);
std::string Inbox(std::string_view peer);

std::string EncodeInt64(int64_t v);  // 8 bytes little-endian
std::optional<int64_t> DecodeInt64(std::string_view bytes);

// Smallest key greater than every key starting with `prefix` ("" = none):
// the exclusive upper bound of a prefix scan.
std::string PrefixEnd(std::string_view prefix);

}  // namespace whistle::storage::keys
