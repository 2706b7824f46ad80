#include "storage/store.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/log.h"
#include "storage/data_dir.h"
#include "storage/keys.h"
#include "storage/raw.h"
#include "whistle/v1/link.pb.h"

namespace whistle::storage {
namespace {

// Column families, in the order they are opened (handles_ is indexed by this).
enum class Cf : uint8_t { kCases, kHistory, kIndex, kTimers, kMeta, kLink, kDirectives, kChanges };
constexpr std::array<const char*, 8> kCfNames = {"cases", "history", "index",      "timers",
                                                 "meta",  "link",    "directives", "changes"};
constexpr char kChangesTrimmedKey[] = "changes/trimmed";
constexpr char kStampChange[] = "stamp";

constexpr size_t kBlockCacheBytes = 64 << 20;
constexpr size_t kInsertHintPrefix = 2;  // the kind of a key: "r/", "c/", ...
constexpr size_t kCaseSeqDigits = 12;

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Reads that met a damaged block, process-wide (one store per process in
// whistled). Logged at most once per 10 s so a listing loop cannot flood the log.
std::atomic<uint64_t> g_read_corruptions{0};
std::atomic<int64_t> g_corruption_logged_ms{-1000000};

void NoteCorruption(const std::string& msg) {
  g_read_corruptions.fetch_add(1, std::memory_order_relaxed);
  int64_t now = NowMs();
  int64_t last = g_corruption_logged_ms.load(std::memory_order_relaxed);
  if (now - last >= 10000 && g_corruption_logged_ms.compare_exchange_strong(last, now)) {
    Log(LogLevel::kError, "storage corruption: a read met a damaged record or block",
        {{"error", msg.substr(0, 300)},
         {"reads_damaged_total", std::to_string(g_read_corruptions.load())}});
  }
}

Status DiskFull(const std::string& msg) { return Status(Code::kResourceExhausted, msg); }

// The only place a rocksdb::Status turns into ours. Transient conditions are
// UNAVAILABLE so callers may retry; a full disk is RESOURCE_EXHAUSTED (retrying
// does not help until space is freed); damage is DATA_LOSS; the rest INTERNAL.
Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsNoSpace()) return DiskFull("disk full: " + msg);
  if (s.IsCorruption()) {
    NoteCorruption(msg);
    return Status::DataLoss(std::move(msg));
  }
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIOError() || s.IsShutdownInProgress() ||
      s.IsIncomplete() || s.IsAborted()) {
    return Status::Unavailable(std::move(msg));
  }
  return Status::Internal(std::move(msg));
}

// meta CF: values are int64 little-endian; a merge operand is a delta.
class Int64AddOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing_value,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* logger) const override {
    uint64_t sum = 0;
    if (existing_value != nullptr) {
      auto base = keys::DecodeInt64(View(*existing_value));
      if (!base) return false;
      sum = static_cast<uint64_t>(*base);
    }
    auto delta = keys::DecodeInt64(View(value));
    if (!delta) return false;
    sum += static_cast<uint64_t>(*delta);  // unsigned: wraps instead of UB
    *new_value = keys::EncodeInt64(static_cast<int64_t>(sum));
    return true;
  }
  const char* Name() const override { return "whistle.Int64Add"; }
};

// Parses the 12 digits after "<prefix>-"; nullopt if `rest` is not exactly that.
std::optional<uint64_t> CaseSeqDigits(std::string_view rest) {
  if (rest.size() != kCaseSeqDigits) return std::nullopt;
  uint64_t v = 0;
  for (char c : rest) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// For a key "<prefix>-<rest>" that is not a case id of this prefix (another
// node's id such as "<prefix>-x-..."), the largest "<prefix>-<12 digits>" that
// sorts below it; "" if none. Lets LastCaseSeq jump over foreign ids instead of
// stepping through them one by one.
std::string LargestCaseIdBelow(std::string_view lo, std::string_view rest) {
  size_t j = 0;
  while (j < rest.size() && j < kCaseSeqDigits && rest[j] >= '0' && rest[j] <= '9') ++j;
  std::string digits(rest.substr(0, j));
  if (j == kCaseSeqDigits) return std::string(lo) + digits;  // 12 digits, then more bytes
  if (j < rest.size() && rest[j] > '9') {
    return std::string(lo) + digits + std::string(kCaseSeqDigits - j, '9');
  }
  // rest[j] sorts below '0' (or rest ends): a smaller digit must come earlier.
  while (!digits.empty() && digits.back() == '0') digits.pop_back();
  if (digits.empty()) return "";
  digits.back() -= 1;
  digits.resize(kCaseSeqDigits, '9');
  return std::string(lo) + digits;
}

StatusOr<uint64_t> ScanLastCaseSeq(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cases,
                                   const std::string& prefix) {
  std::string lo = prefix + "-";
  rocksdb::ReadOptions ro;
  rocksdb::Slice lower(lo);
  ro.iterate_lower_bound = &lower;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cases));
  std::string target = lo + std::string(kCaseSeqDigits, '9');
  it->SeekForPrev(target);
  while (it->Valid()) {
    std::string_view key = View(it->key());
    std::string_view rest = key.substr(lo.size());
    if (auto seq = CaseSeqDigits(rest)) return *seq;
    target = LargestCaseIdBelow(lo, rest);
    if (target.empty()) break;
    it->SeekForPrev(target);
  }
  Status s = FromRocks(it->status(), "scan case ids of " + prefix);
  if (!s.ok()) return s;
  return uint64_t{0};
}

// RocksDB's own log, as our JSON lines (warnings and errors only) instead of
// an unbounded LOG file in the data directory.
class JsonLogger final : public rocksdb::Logger {
 public:
  explicit JsonLogger(std::string dir)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), dir_(std::move(dir)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof(buf), format, ap);
    Log(level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? LogLevel::kError : LogLevel::kWarn, "rocksdb",
        {{"data_dir", dir_}, {"detail", buf}});
  }
  void LogHeader(const char*, va_list) override {}

 private:
  std::string dir_;
};

// Background state shared with the RocksDB listener (its threads).
struct Health {
  std::string dir;
  std::atomic<uint64_t> background_errors{0};
  std::atomic<bool> disk_full{false};
};

const char* ReasonName(rocksdb::BackgroundErrorReason reason) {
  switch (reason) {
    case rocksdb::BackgroundErrorReason::kFlush:
      return "flush";
    case rocksdb::BackgroundErrorReason::kCompaction:
      return "compaction";
    case rocksdb::BackgroundErrorReason::kWriteCallback:
      return "write";
    case rocksdb::BackgroundErrorReason::kMemTable:
      return "memtable";
    case rocksdb::BackgroundErrorReason::kManifestWrite:
      return "manifest_write";
    case rocksdb::BackgroundErrorReason::kFlushNoWAL:
      return "flush_no_wal";
    case rocksdb::BackgroundErrorReason::kManifestWriteNoWAL:
      return "manifest_write_no_wal";
  }
  return "other";
}

// Background errors (a flush or compaction that failed, a WAL write on a full
// disk) are logged and counted; recovery is logged.
class HealthListener final : public rocksdb::EventListener {
 public:
  explicit HealthListener(std::shared_ptr<Health> health) : health_(std::move(health)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override {
    health_->background_errors.fetch_add(1, std::memory_order_relaxed);
    bool full = error != nullptr && error->IsNoSpace();
    if (full) health_->disk_full.store(true);
    Log(LogLevel::kError,
        full ? "storage: disk full, writes refused until space is freed"
             : "storage background error",
        {{"data_dir", health_->dir},
         {"reason", ReasonName(reason)},
         {"error", error != nullptr ? error->ToString() : ""}});
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason reason, rocksdb::Status error,
                            bool* auto_recovery) override {
    // RocksDB's own recovery from a full disk waits until free space exceeds a
    // whole write buffer (64 MiB) and blocks DB::Resume meanwhile; the commit
    // thread resumes instead, as soon as a write fits (Impl::DiskFullBlocks).
    if (error.IsNoSpace() && auto_recovery != nullptr) *auto_recovery = false;
    Log(LogLevel::kWarn, "storage error recovery begins",
        {{"data_dir", health_->dir},
         {"reason", ReasonName(reason)},
         {"error", error.ToString()},
         {"automatic", auto_recovery != nullptr && *auto_recovery ? "true" : "false"}});
  }
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.new_bg_error.ok()) {
      health_->disk_full.store(false);
      Log(LogLevel::kInfo, "storage recovered from a background error",
          {{"data_dir", health_->dir}, {"error", info.old_bg_error.ToString()}});
    } else {
      Log(LogLevel::kError, "storage error recovery failed",
          {{"data_dir", health_->dir}, {"error", info.new_bg_error.ToString()}});
    }
  }

 private:
  std::shared_ptr<Health> health_;
};
std::string NoticePrefix(std::string_view to) {
  std::string k = "n/" + std::string(to);
  k.push_back(keys::kSep);
  return k;
}

// Department inbox rows of a case: d/<dept>\0 <0|1> <due 16 digits> / <case_id>.
// The last summons of a department decides its row (a department summoned
// again after a return has one row).
std::map<std::string, std::string> InboxKeys(const v1::Case& c) {
  std::map<std::string, const v1::Summons*> last;
  for (const auto& s : c.summons()) last[s.department_id()] = &s;
  const bool open = c.state() >= v1::CASE_STATE_REPORTED && c.state() <= v1::CASE_STATE_VERIFIED;
  std::map<std::string, std::string> out;
  for (const auto& [dept, s] : last) {
    // A refused dispatch (退单) is nothing the desk still owes.
    const bool pending = open && s->reported_in_at_ms() == 0 && s->refused_at_ms() == 0;
    char due[32];
    std::snprintf(due, sizeof(due), "%016lld",
                  static_cast<long long>(pending ? s->report_in_by_ms() : 0));
    std::string k = "d/" + dept;
    k.push_back(keys::kSep);
    k.push_back(pending ? '0' : '1');
    k.append(due);
    k.push_back('/');
    k.append(c.id());
    out.emplace(dept, std::move(k));
  }
  return out;
}

// Supervision notice row of a case (at most one): n/<notice_to>\0 <inverted
// noticed_at 16 digits> / <case_id>, newest notice first. Only while a
// notice stands (the case machine clears it on handover and resolution).
std::optional<std::string> NoticeKey(const v1::Case& c) {
  if (c.notice_to_id().empty() || c.state() == v1::CASE_STATE_CLOSED ||
      c.state() == v1::CASE_STATE_EVALUATED || c.state() == v1::CASE_STATE_REJECTED) {
    return std::nullopt;
  }
  constexpr long long kTop = 9999999999999999LL;
  const long long at = std::clamp<long long>(c.noticed_at_ms(), 0, kTop);
  char inverted[32];
  std::snprintf(inverted, sizeof(inverted), "%016lld", kTop - at);
  std::string k = NoticePrefix(c.notice_to_id());
  k.append(inverted);
  k.push_back('/');
  k.append(c.id());
  return k;
}

std::string InboxPrefix(std::string_view dept) {
  std::string k = "d/" + std::string(dept);
  k.push_back(keys::kSep);
  return k;
}

std::string EncodeSeq(uint64_t seq) {
  std::string k;
  for (int shift = 56; shift >= 0; shift -= 8) k.push_back(static_cast<char>(seq >> shift));
  return k;
}

uint64_t DecodeSeq(std::string_view k) {
  uint64_t v = 0;
  for (char c : k) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

}  // namespace

// ---- Batch ----

struct Batch::Rep {
  // kSend: key = peer, value = OutboxRecord; numbered by the commit thread.
  // kChange: value = v1::Change; numbered by the commit thread.
  enum class Kind : uint8_t { kPut, kDelete, kMerge, kSend, kChange };
  struct Op {
    Cf cf;
    Kind kind;
    std::string key;
    std::string value;
  };
  std::vector<Op> ops;
  size_t bytes = 0;
  int64_t earliest_timer = 0;  // earliest timer put, 0 = none (for the timer listener)

  void Add(Cf cf, Kind kind, std::string key, std::string value = {}) {
    bytes += key.size() + value.size();
    ops.push_back({cf, kind, std::move(key), std::move(value)});
  }
};

Batch::Batch() : rep_(std::make_unique<Rep>()) {}
Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

void Batch::RecordTransition(const v1::Case* before, const v1::Case& after,
                             const v1::HistoryEntry& entry) {
  PutCase(before, after, true);
  PutHistory(entry);
}

void Batch::PutCase(const v1::Case* owned_before, const v1::Case& after, bool owned,
                    const v1::Case* copy_before) {
  if (!rep_) rep_ = std::make_unique<Rep>();
  using Kind = Rep::Kind;
  const std::string& id = after.id();
  const v1::Case* before = owned_before;
  rep_->Add(Cf::kCases, Kind::kPut, keys::Case(id), after.SerializeAsString());

  bool moved = before == nullptr || !owned || before->owner_id() != after.owner_id() ||
               before->state() != after.state();
  if (moved) {
    if (before != nullptr) {
      rep_->Add(Cf::kIndex, Kind::kDelete,
                keys::OwnerIndex(before->owner_id(), before->state(), id));
      rep_->Add(Cf::kMeta, Kind::kMerge, keys::Count(before->owner_id(), before->state()),
                keys::EncodeInt64(-1));
    }
    if (owned) {
      rep_->Add(Cf::kIndex, Kind::kPut, keys::OwnerIndex(after.owner_id(), after.state(), id));
      rep_->Add(Cf::kMeta, Kind::kMerge, keys::Count(after.owner_id(), after.state()),
                keys::EncodeInt64(1));
    }
  }
  // Copies are indexed apart: an ancestor lists and counts its subtree's
  // cases from them, never times them or counts them in its metrics.
  if (copy_before != nullptr) {
    rep_->Add(Cf::kIndex, Kind::kDelete,
              keys::CopyIndex(copy_before->owner_id(), copy_before->state(), id));
    rep_->Add(Cf::kMeta, Kind::kMerge,
              keys::CopyCount(copy_before->owner_id(), copy_before->state()),
              keys::EncodeInt64(-1));
  }
  if (!owned) {
    rep_->Add(Cf::kIndex, Kind::kPut, keys::CopyIndex(after.owner_id(), after.state(), id));
    rep_->Add(Cf::kMeta, Kind::kMerge, keys::CopyCount(after.owner_id(), after.state()),
              keys::EncodeInt64(1));
  }

  // Only the owner times a case: a copy's deadlines are its owner's business.
  int64_t old_due = before != nullptr ? before->next_deadline_ms() : 0;
  int64_t new_due = owned ? after.next_deadline_ms() : 0;
  if (old_due > 0 && old_due != new_due) {
    rep_->Add(Cf::kTimers, Kind::kDelete, keys::Timer(old_due, id));
  }
  if (new_due > 0) {
    rep_->Add(Cf::kTimers, Kind::kPut, keys::Timer(new_due, id));
    if (rep_->earliest_timer == 0 || new_due < rep_->earliest_timer) rep_->earliest_timer = new_due;
  }

  // Department inbox rows (owned cases and copies alike: a department on
  // this node reads the copy it was summoned to).
  std::map<std::string, std::string> old_rows;
  if (owned_before != nullptr) old_rows = InboxKeys(*owned_before);
  std::map<std::string, std::string> new_rows = InboxKeys(after);
  for (const auto& [dept, key] : old_rows) {
    auto it = new_rows.find(dept);
    if (it == new_rows.end() || it->second != key) rep_->Add(Cf::kIndex, Kind::kDelete, key);
  }
  for (const auto& [dept, key] : new_rows) {
    auto it = old_rows.find(dept);
    if (it == old_rows.end() || it->second != key) rep_->Add(Cf::kIndex, Kind::kPut, key);
  }

  // Supervision notice row (owned cases and copies alike: the level notified
  // may live on an ancestor node, which holds a copy). A copy's old row is
  // not known here; reads check rows against the case.
  std::optional<std::string> old_notice;
  if (owned_before != nullptr) old_notice = NoticeKey(*owned_before);
  std::optional<std::string> new_notice = NoticeKey(after);
  if (old_notice && old_notice != new_notice) rep_->Add(Cf::kIndex, Kind::kDelete, *old_notice);
  if (new_notice && old_notice != new_notice) rep_->Add(Cf::kIndex, Kind::kPut, *new_notice);
}

void Batch::PutHistory(const v1::HistoryEntry& entry) {
  if (!rep_) rep_ = std::make_unique<Rep>();
  rep_->Add(Cf::kHistory, Rep::Kind::kPut,
            keys::History(entry.case_id(), static_cast<uint64_t>(entry.seq())),
            entry.SerializeAsString());
  v1::Change change;
  change.set_at_ms(entry.at_ms());
  change.add_jurisdiction_ids(entry.jurisdiction_id());
  if (!entry.from_jurisdiction_id().empty() &&
      entry.from_jurisdiction_id() != entry.jurisdiction_id()) {
    change.add_jurisdiction_ids(entry.from_jurisdiction_id());
  }
  auto* c = change.mutable_case_change();
  c->set_case_id(entry.case_id());
  c->set_seq(entry.seq());
  c->set_kind(entry.kind());
  c->set_state(entry.to_state());
  c->set_owner_id(entry.jurisdiction_id());
  c->set_from_owner_id(entry.from_jurisdiction_id());
  c->set_at_ms(entry.at_ms());
  RecordChange(change);
}

void Batch::RecordChange(const v1::Change& change) {
  if (!rep_) rep_ = std::make_unique<Rep>();
  // Key kStampChange: the commit thread sets at_ms from the store's clock.
  rep_->Add(Cf::kChanges, Rep::Kind::kChange, change.at_ms() == 0 ? kStampChange : "",
            change.SerializeAsString());
}

void Batch::Send(const std::string& peer, const std::string& case_id, int64_t now_ms) {
  if (!rep_) rep_ = std::make_unique<Rep>();
  v1::OutboxRecord record;
  record.set_case_id(case_id);
  record.set_written_at_ms(now_ms);
  rep_->Add(Cf::kLink, Rep::Kind::kSend, peer, record.SerializeAsString());
}

void Batch::RecordInbox(const std::string& peer, uint64_t seq) {
  if (!rep_) rep_ = std::make_unique<Rep>();
  rep_->Add(Cf::kLink, Rep::Kind::kPut, keys::Inbox(peer),
            keys::EncodeInt64(static_cast<int64_t>(seq)));
}

void Batch::RecordRequest(const std::string& reporter, const std::string& request_id,
                          const std::string& case_id, const std::string& fingerprint) {
  if (!rep_) rep_ = std::make_unique<Rep>();
  // Case ids never contain a 0x00 byte: it ends the id.
  rep_->Add(Cf::kIndex, Rep::Kind::kPut, keys::Request(reporter, request_id),
            fingerprint.empty() ? case_id : case_id + '\0' + fingerprint);
}

size_t Batch::ByteSize() const { return rep_ ? rep_->bytes : 0; }
bool Batch::empty() const { return !rep_ || rep_->ops.empty(); }

// ---- Store ----

struct Store::Impl {
  struct Pending {
    std::unique_ptr<Batch::Rep> rep;
    Done done;
    std::vector<std::pair<std::string, uint64_t>> sent;  // outbox entries numbered at write
    uint64_t last_change = 0;                            // highest change seq numbered, 0 = none
  };

  Options options;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // Cf order, then "default"
  rocksdb::DBOptions db_options;                      // as opened (for Backup's check)
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;

  // Durability marks (WHISTLE-MARKS): written by the answer thread before a
  // batch is answered. marked_case_seq mirrors marks->marks().case_seq.
  std::unique_ptr<internal::MarkFile> marks;
  std::atomic<uint64_t> marked_case_seq{0};
  // Every db->Write holds it, so the sequence number read right after a
  // group's write is that group's last one.
  std::mutex write_mu;

  std::shared_ptr<Health> health = std::make_shared<Health>();
  bool read_only = false;                  // set at open only
  std::atomic<int64_t> last_resume_ms{0};  // last DB::Resume attempt while the disk is full
  std::atomic<uint64_t> disk_full_refusals{0};
  uint64_t lost_writes = 0;  // set at open only
  uint64_t lost_cases = 0;
  bool damage_accepted = false;
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::Statistics> statistics;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> queue;  // guarded by mu
  bool stopping = false;      // guarded by mu
  std::thread committer;

  // Written groups wait here to be answered. Answering (gRPC sends, actor
  // messages) runs on its own thread so the next WAL write starts at once.
  struct Written {
    std::vector<Pending> group;
    Status status;
    uint64_t seq = 0;       // last RocksDB sequence number of the group
    uint64_t case_seq = 0;  // highest case seq of this node the group wrote
  };
  std::mutex answer_mu;
  std::condition_variable answer_cv;
  std::deque<Written> answers;  // guarded by answer_mu
  bool answers_done = false;    // guarded by answer_mu
  std::thread answerer;

  // Last outbox seq per peer, numbered (the commit thread, before the write) and
  // written (after it). Readers get the written one: an entry numbered but not yet
  // written cannot be read, and a sender taking it for written would skip it.
  mutable std::mutex out_mu;
  std::unordered_map<std::string, uint64_t> out_seq;      // guarded by out_mu
  std::unordered_map<std::string, uint64_t> written_seq;  // guarded by out_mu
  std::function<void(const std::string&, uint64_t)> outbox_listener;
  std::mutex trim_mu;
  std::unordered_map<std::string, uint64_t> acked_mark;  // guarded by trim_mu

  // The last acknowledged seq of `peer` (trim_mu held): 0 if none.
  uint64_t& AckedMark(const std::string& peer) {
    auto [it, fresh] = acked_mark.try_emplace(peer, 0);
    std::string acked;
    if (fresh && db->Get(rocksdb::ReadOptions(), cf(Cf::kLink), "a/" + peer, &acked).ok()) {
      it->second = static_cast<uint64_t>(keys::DecodeInt64(acked).value_or(0));
    }
    return it->second;
  }

  // Change log: numbered by the commit thread only; readers see written_change.
  uint64_t change_seq = 0;                  // commit thread
  std::atomic<uint64_t> written_change{0};  // highest change seq durable
  std::atomic<uint64_t> trimmed_change{0};  // entries up to here are gone
  // Set while the store runs (after the node started): read under listener_mu.
  std::mutex listener_mu;
  std::shared_ptr<const std::function<void(uint64_t)>> change_listener;  // guarded by listener_mu
  std::shared_ptr<const std::function<void(int64_t)>> timer_listener;    // guarded by listener_mu
  std::chrono::steady_clock::time_point next_trim_check{};

  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> wal_syncs{0};

  // Records found unreadable: logged once each, then skipped without parsing
  // again (protobuf logs every failed parse of its own). A later write of the
  // key (a repair) forgets it. At most kMaxUnreadableKept are remembered.
  static constexpr size_t kMaxUnreadableKept = 100000;
  mutable std::mutex unreadable_mu;
  mutable std::unordered_set<std::string> unreadable;  // Cf byte + key; guarded by unreadable_mu
  mutable std::atomic<uint64_t> unreadable_count{0};
  mutable std::atomic<bool> any_unreadable{false};
  mutable std::atomic<int64_t> unreadable_last_log_s{0};

  static std::string UnreadableKey(Cf c, std::string_view key) {
    std::string k(1, static_cast<char>(c));
    k.append(key);
    return k;
  }
  bool KnownUnreadable(Cf c, std::string_view key) const {
    if (!any_unreadable.load(std::memory_order_relaxed)) return false;
    std::lock_guard lock(unreadable_mu);
    return unreadable.count(UnreadableKey(c, key)) != 0;
  }
  // `case_id` and `what` name the record in the log line (ids only, no content).
  void MarkUnreadable(Cf c, std::string_view key, const std::string& case_id,
                      const std::string& what) const {
    bool fresh = false;
    bool kept = false;
    {
      std::lock_guard lock(unreadable_mu);
      if (unreadable.size() < kMaxUnreadableKept) {
        kept = true;
        fresh = unreadable.insert(UnreadableKey(c, key)).second;
        any_unreadable.store(true, std::memory_order_relaxed);
      }
    }
    if (kept && !fresh) return;
    if (kept) unreadable_count.fetch_add(1, std::memory_order_relaxed);
    // Past the cap nothing is remembered: at most one line a second then.
    const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
    if (!kept && unreadable_last_log_s.exchange(now_s) == now_s) return;
    Log(LogLevel::kError, "stored record is unreadable; skipped",
        {{"case_id", case_id},
         {"record", what},
         {"column_family", kCfNames[static_cast<size_t>(c)]}});
  }
  void ForgetUnreadable(const Batch::Rep& rep) {
    if (!any_unreadable.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(unreadable_mu);
    for (const auto& op : rep.ops) {
      if (op.kind == Batch::Rep::Kind::kPut) unreadable.erase(UnreadableKey(op.cf, op.key));
    }
  }

  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return handles[static_cast<size_t>(c)]; }
  const core::Clock& clock() const {
    return options.clock != nullptr ? *options.clock : core::DefaultClock();
  }
  // Appends at_ms to a Change serialized without it: a parser reads the same
  // message as if it had been set before serializing.
  std::string Stamped(const std::string& serialized) const {
    using google::protobuf::internal::WireFormatLite;
    using google::protobuf::io::CodedOutputStream;
    uint8_t field[16];
    uint8_t* end = CodedOutputStream::WriteTagToArray(
        WireFormatLite::MakeTag(v1::Change::kAtMsFieldNumber, WireFormatLite::WIRETYPE_VARINT),
        field);
    end = CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(clock().NowMs()), end);
    const auto size = static_cast<size_t>(end - field);
    std::string out;
    out.reserve(serialized.size() + size);  // one allocation, not a copy then a regrow
    out.append(serialized).append(reinterpret_cast<const char*>(field), size);
    return out;
  }
  void NotifyTimer(int64_t due_ms) {
    std::shared_ptr<const std::function<void(int64_t)>> listener;
    {
      std::lock_guard lock(listener_mu);
      listener = timer_listener;
    }
    if (listener && *listener) (*listener)(due_ms);
  }

  // The commit thread: takes everything queued (up to max_group_bytes), writes
  // it as one WriteBatch with one WAL sync, then answers each batch in order.
  void Run() {
    std::vector<Pending> group;
    for (;;) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping, and every batch answered
        size_t bytes = 0;
        while (!queue.empty() &&
               (group.empty() || bytes + queue.front().rep->bytes <= options.max_group_bytes)) {
          bytes += queue.front().rep->bytes;
          group.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      uint64_t seq = 0;
      uint64_t case_seq = 0;
      Status status = WriteGroup(group, &seq, &case_seq);
      // A full disk fails nothing: the callers (actors) already hold the new
      // state in memory, so the group is held and retried once a second until
      // space is freed. New writes are refused at the door meanwhile (AdmitWrite).
      while (status.code() == Code::kResourceExhausted) {
        {
          std::unique_lock lock(mu);
          if (cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; })) break;
        }
        seq = case_seq = 0;
        status = WriteGroup(group, &seq, &case_seq);
      }
      if (status.code() == Code::kResourceExhausted) {
        // Closing on a full disk: these batches were never acknowledged and are
        // not answered (an answer would tell the actors to give up their state).
        Log(LogLevel::kError, "storage: closing on a full disk; unwritten batches dropped",
            {{"data_dir", options.path}, {"batches", std::to_string(group.size())}});
        group.clear();
        continue;
      }
      if (status.ok()) MaybeTrimChanges();
      {
        std::lock_guard lock(answer_mu);
        answers.push_back({std::move(group), std::move(status), seq, case_seq});
      }
      answer_cv.notify_one();
      group.clear();
    }
  }

  // The answer thread: runs `done` of every written batch, in commit order.
  void Answer() {
    for (;;) {
      std::deque<Written> ready;
      {
        std::unique_lock lock(answer_mu);
        answer_cv.wait(lock, [&] { return answers_done || !answers.empty(); });
        if (answers.empty()) return;  // committer finished and everything is answered
        ready.swap(answers);
      }
      SaveMarks(ready);
      for (auto& written : ready) {
        for (auto& p : written.group) {
          // The link learns of a message before its cause is answered.
          if (written.status.ok() && outbox_listener) {
            for (const auto& [peer, seq] : p.sent) outbox_listener(peer, seq);
          }
          if (written.status.ok() && p.rep->earliest_timer != 0) NotifyTimer(p.rep->earliest_timer);
          if (written.status.ok() && p.last_change != 0) {
            std::shared_ptr<const std::function<void(uint64_t)>> listener;
            {
              std::lock_guard lock(listener_mu);
              listener = change_listener;
            }
            if (listener && *listener) (*listener)(p.last_change);
          }
          if (p.done) p.done(written.status);
        }
      }
    }
  }

  // Raises the durability marks over the written groups (fdatasync) before
  // any of them is answered; if that fails, their callers are not told OK.
  void SaveMarks(std::deque<Written>& ready) {
    if (!marks) return;
    internal::Marks m = marks->marks();
    bool raise = false;
    for (const auto& w : ready) {
      if (!w.status.ok()) continue;
      if (w.seq > m.acked_seq) m.acked_seq = w.seq, raise = true;
      if (w.case_seq > m.case_seq) m.case_seq = w.case_seq, raise = true;
    }
    if (!raise) return;
    Status s = marks->Write(m, options.sync);
    if (s.ok()) {
      marked_case_seq.store(std::max(m.case_seq, m.id_floor));
      return;
    }
    Log(LogLevel::kError, "storage: durability mark not saved; writes answered as failed",
        {{"data_dir", options.path}, {"error", s.ToString()}});
    for (auto& w : ready) {
      if (w.status.ok()) {
        w.status = Status(s.code() == Code::kResourceExhausted ? s.code() : Code::kUnavailable,
                          "written, but its durability mark was not saved (retry): " + s.message());
      }
    }
  }

  // Writes refused while the disk is full: at most one attempt per second to
  // resume (RocksDB may also have recovered on its own), never a retry storm.
  bool DiskFullBlocks() {
    if (!health->disk_full.load()) return false;
    int64_t now = NowMs();
    int64_t last = last_resume_ms.load();
    if (now - last < 1000 || !last_resume_ms.compare_exchange_strong(last, now)) return true;
    rocksdb::Status r = db->Resume();
    if (!r.ok()) {
      Log(LogLevel::kDebug, "storage: resume after disk full failed",
          {{"data_dir", options.path}, {"error", r.ToString()}});
      return true;
    }
    health->disk_full.store(false);
    Log(LogLevel::kInfo, "storage: writes resumed after disk full", {{"data_dir", options.path}});
    return false;
  }

  // The next outbox seq of `peer` (commit thread only writes out_seq).
  uint64_t NextOutboxSeq(const std::string& peer) {
    std::lock_guard lock(out_mu);
    auto it = out_seq.find(peer);
    if (it == out_seq.end()) it = out_seq.emplace(peer, ScanLastOutboxSeq(peer)).first;
    return ++it->second;
  }

  uint64_t ScanLastOutboxSeq(const std::string& peer) const {
    std::string prefix = keys::OutboxPrefix(peer);
    std::string end = keys::PrefixEnd(prefix);
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper(end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf(Cf::kLink)));
    it->SeekToLast();
    if (it->Valid() && View(it->key()).substr(0, prefix.size()) == prefix) {
      return keys::SeqOfOutbox(View(it->key())).value_or(0);
    }
    // Nothing queued: continue after what the peer acknowledged last.
    std::string acked;
    if (db->Get(rocksdb::ReadOptions(), cf(Cf::kLink), "a/" + peer, &acked).ok()) {
      return static_cast<uint64_t>(keys::DecodeInt64(acked).value_or(0));
    }
    return 0;
  }

  Status WriteGroup(std::vector<Pending>& group, uint64_t* last_seq, uint64_t* case_seq) {
    if (read_only) return DiskFull("disk full at start-up: " + options.path + " is read-only");
    if (DiskFullBlocks()) return DiskFull("disk full: " + options.path);
    const std::string own_prefix = options.node_id.empty() ? "" : options.node_id + "-";
    rocksdb::WriteBatch wb;
    const uint64_t first_change = change_seq;
    for (auto& p : group) {
      p.sent.clear();
      p.last_change = 0;
      for (const auto& op : p.rep->ops) {
        rocksdb::Status s;
        if (!own_prefix.empty() && op.cf == Cf::kCases && op.kind == Batch::Rep::Kind::kPut &&
            op.key.compare(0, own_prefix.size(), own_prefix) == 0) {
          if (auto n = CaseSeqDigits(std::string_view(op.key).substr(own_prefix.size()))) {
            *case_seq = std::max(*case_seq, *n);
          }
        }
        switch (op.kind) {
          case Batch::Rep::Kind::kChange:
            p.last_change = ++change_seq;
            s = wb.Put(cf(op.cf), EncodeSeq(p.last_change),
                       op.key == kStampChange ? Stamped(op.value) : op.value);
            break;
          case Batch::Rep::Kind::kSend: {
            uint64_t seq = NextOutboxSeq(op.key);
            p.sent.emplace_back(op.key, seq);
            s = wb.Put(cf(op.cf), keys::Outbox(op.key, seq), op.value);
            break;
          }
          case Batch::Rep::Kind::kPut:
            s = wb.Put(cf(op.cf), op.key, op.value);
            break;
          case Batch::Rep::Kind::kDelete:
            s = wb.Delete(cf(op.cf), op.key);
            break;
          case Batch::Rep::Kind::kMerge:
            s = wb.Merge(cf(op.cf), op.key, op.value);
            break;
        }
        if (!s.ok()) return FromRocks(s, "build write batch");
      }
    }
    rocksdb::WriteOptions wo;
    wo.sync = options.sync;
    rocksdb::Status written;
    {
      std::lock_guard write_lock(write_mu);
      written = db->Write(wo, &wb);
      if (written.ok()) *last_seq = db->GetLatestSequenceNumber();
    }
    Status status = FromRocks(written, "write batch");
    if (written.IsNoSpace()) {
      if (!health->disk_full.exchange(true)) {
        Log(LogLevel::kError, "storage: disk full, writes refused until space is freed",
            {{"data_dir", options.path}, {"error", written.ToString()}});
      }
      last_resume_ms = NowMs();
    }
    if (!status.ok()) {
      // Numbers handed out for a failed write would leave a gap: forget them.
      std::lock_guard lock(out_mu);
      out_seq.clear();
      change_seq = first_change;
    } else if (change_seq != first_change) {
      written_change.store(change_seq, std::memory_order_release);
    }
    if (status.ok()) {
      std::lock_guard lock(out_mu);
      for (const auto& p : group) {
        for (const auto& [peer, seq] : p.sent) {
          uint64_t& written = written_seq[peer];
          written = std::max(written, seq);
        }
      }
    }
    if (status.ok()) {
      for (const auto& p : group) ForgetUnreadable(*p.rep);
    }
    if (status.ok()) {
      commits.fetch_add(group.size(), std::memory_order_relaxed);
      if (options.sync) wal_syncs.fetch_add(1, std::memory_order_relaxed);
    }
    return status;
  }

  // Deletes the oldest change-log entries past the size or age bound; at most
  // once a second, on the commit thread. Not synced: a lost trim is redone.
  void MaybeTrimChanges() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_trim_check) return;
    next_trim_check = now + std::chrono::seconds(1);
    const uint64_t last = written_change.load();
    const uint64_t trimmed = trimmed_change.load();
    uint64_t upto = trimmed;
    if (last > options.change_log_max_entries) {
      upto = std::max(upto, last - options.change_log_max_entries);
    }
    const int64_t cutoff = clock().NowMs() - options.change_log_max_age_ms;
    // Age: walk the head while entries are older (bounded per check).
    size_t walked = 0;
    Status scanned = Scan(Cf::kChanges, EncodeSeq(upto + 1), "", "trim changes",
                          [&](std::string_view key, std::string_view value) {
                            v1::Change c;
                            if (!c.ParseFromArray(value.data(), static_cast<int>(value.size())))
                              return false;
                            if (c.at_ms() >= cutoff || ++walked > 100000) return false;
                            upto = DecodeSeq(key);
                            return true;
                          });
    (void)scanned;  // a failed scan trims by size only; the next check retries
    if (upto <= trimmed) return;
    rocksdb::WriteBatch wb;
    wb.DeleteRange(cf(Cf::kChanges), EncodeSeq(0), EncodeSeq(upto + 1)).PermitUncheckedError();
    wb.Put(cf(Cf::kMeta), kChangesTrimmedKey, keys::EncodeInt64(static_cast<int64_t>(upto)))
        .PermitUncheckedError();
    // Readers refuse what is about to go before it goes.
    trimmed_change.store(upto);
    db->Write(rocksdb::WriteOptions(), &wb).PermitUncheckedError();
  }

  // Visits keys of `c` in [start, end) ("" end = no bound) until fn returns false.
  template <class Fn>
  Status Scan(Cf c, std::string_view start, std::string_view end, std::string_view what, Fn fn,
              const rocksdb::Snapshot* snapshot = nullptr) const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    rocksdb::Slice upper(end.data(), end.size());
    if (!end.empty()) ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf(c)));
    for (it->Seek(rocksdb::Slice(start.data(), start.size())); it->Valid(); it->Next()) {
      if (!fn(View(it->key()), View(it->value()))) break;
    }
    return FromRocks(it->status(), what);
  }

  void Shutdown() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_one();
    if (committer.joinable()) committer.join();
    {
      std::lock_guard lock(answer_mu);
      answers_done = true;
    }
    answer_cv.notify_one();
    if (answerer.joinable()) answerer.join();
    if (db) {
      // Flushing makes the next start-up cheap: nothing to replay from the WAL.
      rocksdb::FlushOptions flush;
      db->Flush(flush, handles).PermitUncheckedError();
      for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
      handles.clear();
      db->Close().PermitUncheckedError();  // the WAL is already durable
      db.reset();
    }
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() {
  if (impl_) impl_->Shutdown();
}

namespace {

// Closes a database opened only to inspect it.
void CloseProbe(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  if (db == nullptr) return;
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  handles.clear();
  db->Close().PermitUncheckedError();
  delete db;
}

const char* ModeName(rocksdb::WALRecoveryMode mode) {
  switch (mode) {
    case rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords:
      return "tolerate-torn-tail";
    case rocksdb::WALRecoveryMode::kAbsoluteConsistency:
      return "absolute";
    case rocksdb::WALRecoveryMode::kPointInTimeRecovery:
      return "point-in-time";
    case rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords:
      return "skip-corrupted";
  }
  return "unknown";
}

std::string CaseId(const std::string& prefix, uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%012llu", static_cast<unsigned long long>(seq));
  return prefix + "-" + buf;
}

constexpr char kRefuseHint[] =
    ". Nothing was changed. Restore a backup (docs/operations.md), or start with "
    "--accept-data-loss=1 to serve what remains (the loss is logged and exported as "
    "whistle_storage_data_loss_*)";

}  // namespace

StatusOr<std::unique_ptr<Store>> Store::Open(const Options& options) {
  using internal::DirState;
  const std::string& path = options.path;
  if (path.empty()) return Status::InvalidArgument("storage.path: must not be empty");

  // 1. What is in the directory decides whether a new store may be made here.
  const DirState state = internal::InspectDir(path);
  bool fresh = false;
  std::vector<std::string> damage;  // what was lost or is damaged, for the operator
  switch (state) {
    case DirState::kNotDirectory:
      return Status::FailedPrecondition("data dir " + path + " is not a directory");
    case DirState::kForeign:
      return Status::FailedPrecondition(
          "data dir " + path +
          " holds files but no Whistle store (neither WHISTLE-STORE nor RocksDB CURRENT): "
          "refusing to use it; point --data-dir at a new or empty directory");
    case DirState::kEmpty:
      if (!options.init) {
        return Status::FailedPrecondition(
            "data dir " + path +
            " exists but is empty: if this node held data, its volume is probably not mounted "
            "(nothing was written). To initialise a NEW store here, start once with "
            "--init-data-dir=1");
      }
      fresh = true;
      break;
    case DirState::kMissing: {
      std::error_code ec;
      std::filesystem::create_directories(path, ec);  // RocksDB creates only the last level
      if (ec) return Status::Unavailable("create " + path + ": " + ec.message());
      fresh = true;
      break;
    }
    case DirState::kIdentityOnly:
      damage.push_back(
          "RocksDB files are gone (WHISTLE-STORE present, no CURRENT): every case "
          "of this store is lost");
      if (!options.accept_data_loss) {
        return Status::DataLoss("data dir " + path + ": " + damage.back() + kRefuseHint);
      }
      break;
    case DirState::kStore:
    case DirState::kLegacy:
      break;
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->health->dir = path;
  impl->cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  impl->statistics = rocksdb::CreateDBStatistics();
  // Tickers only: STALL_MICROS and WAL_FILE_SYNCED are all we read.
  impl->statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);

  // 2. The marks say what callers were told is durable.
  internal::Marks marks;
  if (state == DirState::kStore || state == DirState::kIdentityOnly) {
    auto opened = internal::MarkFile::Open(path, /*create=*/false);
    if (!opened.ok()) {
      damage.push_back(std::string(internal::kMarksFile) + ": " + opened.status().message() +
                       " (what was acknowledged cannot be verified)");
      if (!options.accept_data_loss) {
        return Status::DataLoss("data dir " + path + ": " + damage.back() + kRefuseHint);
      }
    } else {
      impl->marks = std::move(opened).value();
      marks = impl->marks->marks();
    }
  }

  rocksdb::DBOptions& db_options = impl->db_options;
  db_options.create_if_missing = fresh || state == DirState::kIdentityOnly;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Small column families (counts, timers) would otherwise pin old WAL files and
  // make a restart replay them; this forces their flush instead.
  db_options.max_total_wal_size = 128 << 20;
  db_options.statistics = impl->statistics;
  // A torn last record is a write that was never acknowledged (the WAL is synced
  // before any answer); any other damage stops recovery with an error.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.paranoid_checks = true;
  if (options.rocksdb_env != nullptr)
    db_options.env = static_cast<rocksdb::Env*>(options.rocksdb_env);
  // RocksDB's log goes to ours (warnings and errors): no LOG file grows in the data dir.
  db_options.info_log = std::make_shared<JsonLogger>(path);
  db_options.listeners.push_back(std::make_shared<HealthListener>(impl->health));

  auto table_factory = [&](bool bloom) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = impl->cache;  // one cache shared by every column family
    // Point lookups (case by id, request id) dominate cases and index.
    if (bloom) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(t));
  };
  auto with_bloom = table_factory(true);
  auto without_bloom = table_factory(false);
  std::vector<rocksdb::ColumnFamilyDescriptor>& descriptors = impl->descriptors;
  for (size_t i = 0; i < kCfNames.size(); ++i) {
    auto c = static_cast<Cf>(i);
    rocksdb::ColumnFamilyOptions cf_options;
    cf_options.compaction_style = rocksdb::kCompactionStyleLevel;
    cf_options.level_compaction_dynamic_level_bytes = true;
    cf_options.table_factory = c == Cf::kCases || c == Cf::kIndex ? with_bloom : without_bloom;
    // Keys of one kind ("r/", "i/", ...) are written in runs of neighbours:
    // start each memtable insert where the last one of that kind ended
    // instead of at the top of the skip list. Not where DeleteRange is used:
    // RocksDB 7.8 keeps one hint per prefix for both the point and the range
    // tombstone skip lists, and a hint from one corrupts an insert into the other.
    if (c != Cf::kChanges && c != Cf::kLink) {
      cf_options.memtable_insert_with_hint_prefix_extractor.reset(
          rocksdb::NewFixedPrefixTransform(kInsertHintPrefix));
    }
    // Directive progress counts are int64 deltas too (storage/directive_store.cc).
    if (c == Cf::kMeta || c == Cf::kDirectives) {
      cf_options.merge_operator = std::make_shared<Int64AddOperator>();
      // A hot counter (today's assessment row, a directive's progress) gets a
      // +1 per transition: fold its operands at write time every 32, so a read
      // never sums thousands of them from the memtable.
      cf_options.max_successive_merges = 32;
    }
    descriptors.emplace_back(kCfNames[i], cf_options);
  }
  {
    rocksdb::ColumnFamilyOptions default_options;
    default_options.table_factory = without_bloom;
    descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, default_options);
  }

  // 3. Before anything is written, recover read-only and compare with the marks:
  //    a refused start leaves the WAL and SSTs exactly as found.
  uint64_t recovered_case_seq = 0;
  if (state == DirState::kStore || state == DirState::kLegacy) {
    // RocksDB's own lock first: a store in use by another process is busy, not damaged.
    rocksdb::FileLock* lock = nullptr;
    if (auto ls = db_options.env->LockFile(path + "/LOCK", &lock); !ls.ok()) {
      return Status::Unavailable("data dir " + path + " is in use (LOCK held): " + ls.ToString());
    }
    std::unique_ptr<rocksdb::FileLock, std::function<void(rocksdb::FileLock*)>> unlock(
        lock, [env = db_options.env](rocksdb::FileLock* l) {
          env->UnlockFile(l).PermitUncheckedError();
        });
    std::vector<rocksdb::ColumnFamilyHandle*> probe_handles;
    rocksdb::DB* probe = nullptr;
    rocksdb::Status s =
        rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &probe_handles, &probe);
    if (!s.ok() && !s.IsNoSpace() && !s.IsBusy()) {
      damage.push_back("recovery failed: " + s.ToString());
      if (!options.accept_data_loss) {
        return Status::DataLoss("data dir " + path + " is damaged: " + s.ToString() + kRefuseHint);
      }
      // Accepted: keep the consistent prefix before the damage, else skip what is damaged.
      for (auto mode : {rocksdb::WALRecoveryMode::kPointInTimeRecovery,
                        rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords}) {
        db_options.wal_recovery_mode = mode;
        probe_handles.clear();
        s = rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &probe_handles, &probe);
        if (s.ok()) break;
      }
    }
    if (!s.ok()) return FromRocks(s, "open " + path + " (read-only check)");
    const uint64_t recovered = probe->GetLatestSequenceNumber();
    if (recovered < marks.acked_seq) {
      impl->lost_writes = marks.acked_seq - recovered;
      damage.push_back("acknowledged writes lost: recovered through RocksDB sequence " +
                       std::to_string(recovered) + " but writes through " +
                       std::to_string(marks.acked_seq) + " were acknowledged (" +
                       std::to_string(impl->lost_writes) +
                       " writes; WAL missing, truncated or damaged)");
    }
    if (!options.node_id.empty()) {
      auto last =
          ScanLastCaseSeq(probe, probe_handles[static_cast<size_t>(Cf::kCases)], options.node_id);
      if (!last.ok()) {
        damage.push_back("case ids unreadable: " + last.status().message());
      } else {
        recovered_case_seq = *last;
        if (recovered_case_seq < marks.case_seq) {
          impl->lost_cases = marks.case_seq - recovered_case_seq;
          damage.push_back("cases lost: " + CaseId(options.node_id, marks.case_seq) +
                           " was acknowledged but the newest case found is " +
                           (recovered_case_seq == 0 ? std::string("none")
                                                    : CaseId(options.node_id, recovered_case_seq)) +
                           " (up to " + std::to_string(impl->lost_cases) + " cases)");
        }
      }
    }
    if (options.verify_checksums_on_open) {
      rocksdb::Status v = probe->VerifyChecksum();
      if (!v.ok()) damage.push_back("SST damaged: " + v.ToString());
    }
    CloseProbe(probe, probe_handles);
    unlock.reset();
    if (!damage.empty() && !options.accept_data_loss) {
      std::string all;
      for (const auto& d : damage) all += (all.empty() ? "" : "; ") + d;
      return Status::DataLoss("data dir " + path + " lost acknowledged data: " + all + kRefuseHint);
    }
  }

  // 4. Open for real. A full disk at start-up leaves a store that serves reads.
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, descriptors, &impl->handles, &db);
  if (!s.ok() && s.IsNoSpace() && !fresh) {
    Log(LogLevel::kError,
        "storage: disk full at start-up; serving reads only, writes are refused with "
        "RESOURCE_EXHAUSTED until space is freed and whistled restarts",
        {{"data_dir", path}, {"error", s.ToString()}});
    impl->handles.clear();
    s = rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &impl->handles, &db);
    impl->read_only = s.ok();
  }
  if (!s.ok()) return FromRocks(s, "open " + path);
  impl->db.reset(db);

  // 5. A new (or adopted) store gets its marks, then its identity: a crash in
  //    between leaves RocksDB files without identity, which the next start adopts.
  if (!impl->read_only) {
    if (!impl->marks) {
      auto created = internal::MarkFile::Open(path, /*create=*/true);
      if (!created.ok()) return created.status();
      impl->marks = std::move(created).value();
    }
    if (state != DirState::kStore && state != DirState::kIdentityOnly) {
      if (Status w = internal::WriteIdentity(path, options.node_id); !w.ok()) return w;
      if (state == DirState::kLegacy) {
        Log(LogLevel::kWarn, "storage: adopted a data dir without WHISTLE-STORE (older version)",
            {{"data_dir", path}});
      }
    }
    // Accepted loss: what is there now is what callers may rely on from here on;
    // the case-id high-water mark never goes down.
    internal::Marks now = impl->marks->marks();
    now.id_floor = std::max({now.id_floor, marks.id_floor, marks.case_seq, recovered_case_seq});
    if (!damage.empty()) {
      now.acked_seq = impl->db->GetLatestSequenceNumber();
      now.case_seq = recovered_case_seq;
    }
    now.case_seq = std::max(now.case_seq, recovered_case_seq);
    const internal::Marks& had = impl->marks->marks();
    if (now.acked_seq != had.acked_seq || now.case_seq != had.case_seq ||
        now.id_floor != had.id_floor) {
      if (Status w = impl->marks->Write(now, true); !w.ok()) return w;
    }
    impl->marked_case_seq.store(std::max(now.case_seq, now.id_floor));
  } else {
    impl->marked_case_seq.store(std::max({marks.case_seq, marks.id_floor, recovered_case_seq}));
  }

  if (!damage.empty()) {
    impl->damage_accepted = true;
    std::string all;
    for (const auto& d : damage) all += (all.empty() ? "" : "; ") + d;
    Log(LogLevel::kError, "storage: started over lost or damaged data (--accept-data-loss)",
        {{"data_dir", path},
         {"damage", all},
         {"lost_writes", std::to_string(impl->lost_writes)},
         {"lost_cases", std::to_string(impl->lost_cases)},
         {"recovery", ModeName(db_options.wal_recovery_mode)}});
  }
  Log(fresh ? LogLevel::kInfo : LogLevel::kDebug,
      fresh ? "storage: initialised a new data dir" : "storage: opened",
      {{"data_dir", path},
       {"store_id", internal::ReadStoreId(path)},
       {"sequence", std::to_string(impl->db->GetLatestSequenceNumber())},
       {"read_only", impl->read_only ? "true" : "false"}});

  {
    // Change numbering continues after the last entry, or after the trim mark.
    std::string v;
    if (impl->db->Get(rocksdb::ReadOptions(), impl->cf(Cf::kMeta), kChangesTrimmedKey, &v).ok()) {
      impl->trimmed_change = static_cast<uint64_t>(keys::DecodeInt64(v).value_or(0));
    }
    std::unique_ptr<rocksdb::Iterator> it(
        impl->db->NewIterator(rocksdb::ReadOptions(), impl->cf(Cf::kChanges)));
    it->SeekToLast();
    uint64_t last = it->Valid() ? DecodeSeq(View(it->key())) : 0;
    impl->change_seq = std::max(last, impl->trimmed_change.load());
    impl->written_change = impl->change_seq;
  }

  Impl* raw = impl.get();
  impl->committer = std::thread([raw] { raw->Run(); });
  impl->answerer = std::thread([raw] { raw->Answer(); });
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

StatusOr<BackupInfo> Store::Backup(const std::string& dir) {
  namespace fs = std::filesystem;
  if (dir.empty() || dir.front() != '/')
    return Status::InvalidArgument("dir: want an absolute path");
  fs::path target = fs::path(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // trailing slash
  std::error_code ec;
  fs::path data = fs::weakly_canonical(impl_->options.path, ec);
  fs::path resolved = fs::weakly_canonical(target, ec);
  if (ec) return Status::InvalidArgument("dir: cannot resolve " + target.string());
  auto inside = [](const fs::path& p, const fs::path& base) {
    auto [b, _] = std::mismatch(base.begin(), base.end(), p.begin(), p.end());
    return b == base.end();
  };
  if (inside(resolved, data) || inside(data, resolved)) {
    return Status::InvalidArgument("dir: must be outside the data directory " +
                                   impl_->options.path);
  }
  if (!fs::is_directory(resolved.parent_path(), ec)) {
    return Status::FailedPrecondition("dir: parent directory " + resolved.parent_path().string() +
                                      " does not exist");
  }
  if (fs::exists(resolved, ec)) {
    if (!fs::is_directory(resolved, ec)) {
      return Status::FailedPrecondition("dir: " + resolved.string() +
                                        " exists and is not a directory");
    }
    if (!fs::is_empty(resolved, ec)) {
      return Status::FailedPrecondition("dir: " + resolved.string() +
                                        " exists and is not empty; refusing to overwrite it");
    }
    fs::remove(resolved, ec);  // RocksDB creates the checkpoint directory itself
    if (ec)
      return Status::Unavailable("dir: remove empty " + resolved.string() + ": " + ec.message());
  }
  if (impl_->read_only) {
    return DiskFull("disk full: the store is read-only; a checkpoint needs a flush");
  }
  rocksdb::Checkpoint* raw = nullptr;
  if (auto s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw); !s.ok()) {
    return FromRocks(s, "backup: checkpoint");
  }
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  BackupInfo info;
  info.dir = resolved.string();
  // log_size_for_flush = 0: memtables are flushed first, so the checkpoint is
  // SST files (hard links on the same filesystem) plus a short WAL tail.
  if (auto s = checkpoint->CreateCheckpoint(info.dir, 0, &info.sequence); !s.ok()) {
    return FromRocks(s, "backup into " + info.dir);
  }
  // The checkpoint is a data directory of the same store: identity and marks
  // that match its own content (not the live store's, which moves on).
  fs::copy_file(fs::path(impl_->options.path) / internal::kIdentityFile,
                fs::path(info.dir) / internal::kIdentityFile, ec);
  if (ec) return Status::Unavailable("backup: copy identity: " + ec.message());
  internal::Marks marks;
  marks.acked_seq = info.sequence;
  if (!impl_->options.node_id.empty()) {
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* probe = nullptr;
    rocksdb::DBOptions ro_options = impl_->db_options;
    ro_options.listeners.clear();
    auto s =
        rocksdb::DB::OpenForReadOnly(ro_options, info.dir, impl_->descriptors, &handles, &probe);
    if (!s.ok()) return FromRocks(s, "backup: check " + info.dir);
    auto last =
        ScanLastCaseSeq(probe, handles[static_cast<size_t>(Cf::kCases)], impl_->options.node_id);
    marks.acked_seq = std::max(marks.acked_seq, probe->GetLatestSequenceNumber());
    CloseProbe(probe, handles);
    if (!last.ok()) return last.status();
    marks.case_seq = *last;
  }
  if (Status s = internal::MarkFile::WriteNew(info.dir, marks); !s.ok()) return s;
  for (const auto& entry : fs::recursive_directory_iterator(info.dir, ec)) {
    if (entry.is_regular_file(ec)) {
      ++info.files;
      info.bytes += entry.file_size(ec);
    }
  }
  Log(LogLevel::kInfo, "storage: backup written",
      {{"dir", info.dir},
       {"sequence", std::to_string(info.sequence)},
       {"files", std::to_string(info.files)},
       {"bytes", std::to_string(info.bytes)}});
  return info;
}

Status Store::AdmitWrite() {
  if (impl_->read_only) {
    impl_->disk_full_refusals.fetch_add(1, std::memory_order_relaxed);
    return DiskFull(
        "disk full: the data volume was full when whistled started, so it serves "
        "reads only; free space on it and restart whistled");
  }
  if (impl_->DiskFullBlocks()) {
    impl_->disk_full_refusals.fetch_add(1, std::memory_order_relaxed);
    return DiskFull(
        "disk full: writes are refused until space is freed on the data volume "
        "(reads still work)");
  }
  return Status::Ok();
}

void Store::Commit(Batch batch, Done done) {
  Impl::Pending p{std::move(batch.rep_), std::move(done), {}, 0};
  if (!p.rep) p.rep = std::make_unique<Batch::Rep>();
  {
    std::unique_lock lock(impl_->mu);
    if (impl_->stopping) {
      lock.unlock();
      if (p.done) p.done(Status::Unavailable("store " + impl_->options.path + " is closing"));
      return;
    }
    impl_->queue.push_back(std::move(p));
  }
  impl_->cv.notify_one();
}

Status Store::CommitAndWait(Batch batch) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  Commit(std::move(batch), [&promise](const Status& s) { promise.set_value(s); });
  return future.get();
}

void Store::SetOutboxListener(std::function<void(const std::string&, uint64_t)> listener) {
  impl_->outbox_listener = std::move(listener);
}

void Store::SetChangeListener(std::function<void(uint64_t)> listener) {
  auto shared = std::make_shared<const std::function<void(uint64_t)>>(std::move(listener));
  std::lock_guard lock(impl_->listener_mu);
  impl_->change_listener = std::move(shared);
}

uint64_t Store::LastChangeSeq() const { return impl_->written_change.load(); }
uint64_t Store::TrimmedChangeSeq() const { return impl_->trimmed_change.load(); }

StatusOr<std::vector<ChangeEntry>> Store::ReadChanges(uint64_t after_seq, size_t limit) const {
  const uint64_t last = impl_->written_change.load(std::memory_order_acquire);
  if (after_seq > last) {
    return Status::OutOfRange("token " + std::to_string(after_seq) +
                              " is ahead of this node's change log (last " + std::to_string(last) +
                              "): not a token of this node's data");
  }
  auto trimmed_error = [&](uint64_t trimmed) {
    return Status::OutOfRange("token " + std::to_string(after_seq) +
                              ": the change log is trimmed up to " + std::to_string(trimmed) +
                              "; changes after the token are gone, start a fresh watch "
                              "(empty token) after re-reading state");
  };
  if (after_seq < impl_->trimmed_change.load()) return trimmed_error(impl_->trimmed_change.load());
  std::vector<ChangeEntry> out;
  if (limit == 0 || after_seq == last) return out;
  bool parsed = true;
  Status s = impl_->Scan(Cf::kChanges, EncodeSeq(after_seq + 1), EncodeSeq(last + 1),
                         "read change log", [&](std::string_view key, std::string_view v) {
                           ChangeEntry& e = out.emplace_back();
                           e.seq = DecodeSeq(key);
                           parsed = e.change.ParseFromArray(v.data(), static_cast<int>(v.size()));
                           return parsed && out.size() < limit;
                         });
  if (!s.ok()) return s;
  if (!parsed) return Status::Internal("change log: stored entry does not parse");
  // A trim racing the read: what was read must start right after the token.
  if (after_seq < impl_->trimmed_change.load() &&
      (out.empty() || out.front().seq != after_seq + 1)) {
    return trimmed_error(impl_->trimmed_change.load());
  }
  if (!out.empty() && out.front().seq != after_seq + 1) {
    return trimmed_error(out.front().seq - 1);
  }
  return out;
}

Status Store::ScanCaseIndex(const std::string& prefix, const std::string& after_key, size_t limit,
                            const std::string& what,
                            const std::function<bool(std::string_view, v1::Case&)>& keep,
                            std::string* next_key) const {
  if (limit == 0) return Status::InvalidArgument("limit: must be positive");
  const std::string start = after_key > prefix ? after_key : prefix;
  size_t kept = 0;
  std::string last_key;
  bool more = false;
  Status inner = Status::Ok();
  Status s = impl_->Scan(Cf::kIndex, start, keys::PrefixEnd(prefix), what,
                         [&](std::string_view key, std::string_view) {
                           if (key == after_key) return true;
                           if (kept == limit) {
                             more = true;
                             return false;
                           }
                           last_key.assign(key);
                           auto slash = key.rfind('/');
                           if (slash == std::string_view::npos) return true;
                           auto c = GetCase(std::string(key.substr(slash + 1)));
                           if (!c.ok()) {
                             if (c.status().code() == Code::kNotFound) return true;
                             inner = c.status();
                             return false;
                           }
                           if (keep(key, *c)) ++kept;
                           return true;
                         });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  if (more) *next_key = last_key;
  return Status::Ok();
}

StatusOr<InboxPage> Store::DepartmentInbox(const std::string& department,
                                           const std::string& after_key, size_t limit) const {
  const std::string prefix = InboxPrefix(department);
  InboxPage page;
  Status s = ScanCaseIndex(
      prefix, after_key, limit, "inbox of " + department,
      [&](std::string_view key, v1::Case& c) {
        // The index is a hint: keep the row only if the case still puts the
        // department there (a copy's rows are never moved).
        auto rows = InboxKeys(c);
        auto it = rows.find(department);
        if (it == rows.end() || it->second != key) return false;
        InboxRow& row = page.rows.emplace_back();
        row.pending = key[prefix.size()] == '0';
        for (const auto& sm : c.summons()) {
          if (sm.department_id() == department) row.report_in_by_ms = sm.report_in_by_ms();
        }
        row.c = std::move(c);
        return true;
      },
      &page.next_key);
  if (!s.ok()) return s;
  return page;
}

StatusOr<NoticePage> Store::SupervisionNotices(const std::string& jurisdiction,
                                               const std::string& after_key, size_t limit) const {
  NoticePage page;
  Status s = ScanCaseIndex(
      NoticePrefix(jurisdiction), after_key, limit, "notices of " + jurisdiction,
      [&](std::string_view key, v1::Case& c) {
        // A hint: keep the row only if the case still stands there (a copy's
        // old rows are never deleted).
        auto now_key = NoticeKey(c);
        if (!now_key || *now_key != key) return false;
        page.cases.push_back(std::move(c));
        return true;
      },
      &page.next_key);
  if (!s.ok()) return s;
  return page;
}

StatusOr<ListResult> Store::ReportedBy(const std::string& reporter, const std::string& after_key,
                                       size_t limit) const {
  if (limit == 0) return Status::InvalidArgument("limit: must be positive");
  std::string prefix = "r/" + reporter;
  prefix.push_back(keys::kSep);
  const std::string start = after_key > prefix ? after_key : prefix;
  ListResult result;
  std::string last_key;
  bool more = false;
  Status inner = Status::Ok();
  Status s = impl_->Scan(Cf::kIndex, start, keys::PrefixEnd(prefix), "reports of " + reporter,
                         [&](std::string_view key, std::string_view value) {
                           if (key == after_key) return true;
                           if (result.cases.size() == limit) {
                             more = true;
                             return false;
                           }
                           last_key.assign(key);
                           // The value is "<case_id>\0<fingerprint>" (no fingerprint in
                           // records written before fingerprints).
                           std::string case_id(value.substr(0, value.find('\0')));
                           auto c = GetCase(case_id);
                           if (!c.ok()) {
                             if (c.status().code() == Code::kNotFound) return true;
                             if (c.status().code() == Code::kDataLoss) {
                               result.unreadable.push_back(case_id);
                               return true;
                             }
                             inner = c.status();
                             return false;
                           }
                           result.cases.push_back(std::move(c).value());
                           return true;
                         });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  if (more) result.next_key = last_key;
  return result;
}

StatusOr<std::pair<v1::Case, std::vector<v1::HistoryEntry>>> Store::GetCaseWithHistory(
    const std::string& case_id) const {
  rocksdb::ManagedSnapshot snapshot(impl_->db.get());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snapshot();
  std::string value;
  rocksdb::Status s = impl_->db->Get(ro, impl_->cf(Cf::kCases), keys::Case(case_id), &value);
  if (s.IsNotFound()) return Status::NotFound("case " + case_id + " not found");
  if (!s.ok()) return FromRocks(s, "read case " + case_id);
  std::pair<v1::Case, std::vector<v1::HistoryEntry>> out;
  if (impl_->KnownUnreadable(Cf::kCases, keys::Case(case_id)) ||
      !out.first.ParseFromString(value)) {
    impl_->MarkUnreadable(Cf::kCases, keys::Case(case_id), case_id, "case");
    return Status::DataLoss("case " + case_id + ": stored record is unreadable");
  }
  std::string prefix = keys::HistoryPrefix(case_id);
  bool parsed = true;
  Status scan = impl_->Scan(
      Cf::kHistory, prefix, keys::PrefixEnd(prefix), "read history of " + case_id,
      [&](std::string_view key, std::string_view v) {
        parsed = !impl_->KnownUnreadable(Cf::kHistory, key) &&
                 out.second.emplace_back().ParseFromArray(v.data(), static_cast<int>(v.size()));
        if (!parsed) impl_->MarkUnreadable(Cf::kHistory, key, case_id, "history entry");
        return parsed;
      },
      snapshot.snapshot());
  if (!scan.ok()) return scan;
  if (!parsed) {
    return Status::DataLoss("history of case " + case_id + ": an entry is unreadable");
  }
  return out;
}

StatusOr<std::vector<OutboxEntry>> Store::ReadOutbox(const std::string& peer, uint64_t after_seq,
                                                     size_t limit) const {
  std::vector<OutboxEntry> out;
  if (limit == 0) return out;
  std::string prefix = keys::OutboxPrefix(peer);
  bool parsed = true;
  Status s = impl_->Scan(Cf::kLink, keys::Outbox(peer, after_seq + 1), keys::PrefixEnd(prefix),
                         "read outbox of " + peer, [&](std::string_view key, std::string_view v) {
                           v1::OutboxRecord record;
                           parsed = record.ParseFromArray(v.data(), static_cast<int>(v.size()));
                           if (!parsed) return false;
                           out.push_back({keys::SeqOfOutbox(key).value_or(0), record.case_id(),
                                          record.written_at_ms()});
                           return out.size() < limit;
                         });
  if (!s.ok()) return s;
  if (!parsed) return Status::Internal("outbox of " + peer + ": stored entry does not parse");
  return out;
}

Status Store::TrimOutbox(const std::string& peer, uint64_t seq) {
  // The acknowledged mark only rises: a stale trim (a late ack of a replaced
  // session) must not make numbering restart below what the peer has seen.
  std::lock_guard trim_lock(impl_->trim_mu);
  uint64_t& mark = impl_->AckedMark(peer);
  if (seq <= mark) return Status::Ok();
  const uint64_t from = mark + 1;
  mark = seq;
  rocksdb::WriteBatch wb;
  rocksdb::Status s;
  // Point deletes: range tombstones piling up at the head of the outbox made
  // every read of it slower (see bench/README.md, link_bench). A huge gap
  // (first trim of an old outbox) still takes one range.
  constexpr uint64_t kMaxPointDeletes = 100000;
  if (seq - from < kMaxPointDeletes) {
    for (uint64_t n = from; n <= seq && s.ok(); ++n) {
      s = wb.Delete(impl_->cf(Cf::kLink), keys::Outbox(peer, n));
    }
  } else {
    s = wb.DeleteRange(impl_->cf(Cf::kLink), keys::Outbox(peer, 0), keys::Outbox(peer, seq + 1));
  }
  // Remember the acknowledged number so numbering continues after an empty outbox.
  if (s.ok())
    s = wb.Put(impl_->cf(Cf::kLink), "a/" + peer, keys::EncodeInt64(static_cast<int64_t>(seq)));
  if (!s.ok()) return FromRocks(s, "trim outbox of " + peer);
  std::lock_guard write_lock(impl_->write_mu);
  return FromRocks(impl_->db->Write(rocksdb::WriteOptions(), &wb), "trim outbox of " + peer);
}

uint64_t Store::AckedOutboxSeq(const std::string& peer) const {
  std::lock_guard trim_lock(impl_->trim_mu);
  return impl_->AckedMark(peer);
}

uint64_t Store::LastOutboxSeq(const std::string& peer) const {
  std::lock_guard lock(impl_->out_mu);
  auto it = impl_->written_seq.find(peer);
  if (it != impl_->written_seq.end()) return it->second;
  // What the database holds is written; a write in flight raises it when done.
  uint64_t last = impl_->ScanLastOutboxSeq(peer);
  impl_->written_seq.emplace(peer, last);
  return last;
}

StatusOr<uint64_t> Store::InboxSeq(const std::string& peer) const {
  std::string value;
  rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(Cf::kLink), keys::Inbox(peer), &value);
  if (s.IsNotFound()) return uint64_t{0};
  if (!s.ok()) return FromRocks(s, "read inbox of " + peer);
  auto v = keys::DecodeInt64(value);
  if (!v) return Status::Internal("inbox of " + peer + ": malformed record");
  return static_cast<uint64_t>(*v);
}

StatusOr<v1::Case> Store::GetCase(const std::string& case_id) const {
  const std::string key = keys::Case(case_id);
  auto unreadable = [&] {
    return Status::DataLoss("case " + case_id + ": stored record is unreadable");
  };
  if (impl_->KnownUnreadable(Cf::kCases, key)) return unreadable();
  rocksdb::PinnableSlice value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(Cf::kCases), key, &value);
  if (s.IsNotFound()) return Status::NotFound("case " + case_id + " not found");
  if (!s.ok()) return FromRocks(s, "read case " + case_id);
  v1::Case c;
  if (!c.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    impl_->MarkUnreadable(Cf::kCases, key, case_id, "case");
    return unreadable();
  }
  return c;
}

StatusOr<std::vector<v1::HistoryEntry>> Store::History(
    const std::string& case_id, std::vector<int64_t>* unreadable_seqs) const {
  std::string prefix = keys::HistoryPrefix(case_id);
  std::string end = keys::PrefixEnd(prefix);
  std::vector<v1::HistoryEntry> entries;
  int64_t bad_seq = 0;
  Status s = impl_->Scan(Cf::kHistory, prefix, end, "read history of " + case_id,
                         [&](std::string_view key, std::string_view value) {
                           v1::HistoryEntry e;
                           if (!impl_->KnownUnreadable(Cf::kHistory, key) &&
                               e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                             entries.push_back(std::move(e));
                             return true;
                           }
                           // The seq is the key's last 8 bytes (big-endian).
                           int64_t seq = 0;
                           for (char ch : key.substr(key.size() - 8)) {
                             seq = (seq << 8) | static_cast<uint8_t>(ch);
                           }
                           impl_->MarkUnreadable(Cf::kHistory, key, case_id,
                                                 "history entry " + std::to_string(seq));
                           if (unreadable_seqs == nullptr) {
                             bad_seq = seq;
                             return false;
                           }
                           unreadable_seqs->push_back(seq);
                           return true;
                         });
  if (!s.ok()) return s;
  if (bad_seq != 0) {
    return Status::DataLoss("history of case " + case_id + ": entry " + std::to_string(bad_seq) +
                            " is unreadable");
  }
  return entries;
}

StatusOr<std::string> Store::FindRequest(const std::string& reporter,
                                         const std::string& request_id) const {
  auto found = FindRequestRecord(reporter, request_id);
  if (!found.ok()) return found.status();
  return std::move(found->case_id);
}

StatusOr<Store::RequestRecord> Store::FindRequestRecord(const std::string& reporter,
                                                        const std::string& request_id) const {
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(Cf::kIndex),
                                     keys::Request(reporter, request_id), &value);
  if (s.IsNotFound()) {
    return Status::NotFound("no report " + request_id + " from " + reporter);
  }
  if (!s.ok()) return FromRocks(s, "read request " + request_id);
  RequestRecord record;
  const size_t sep = value.find('\0');
  record.case_id = value.substr(0, sep);
  if (sep != std::string::npos) record.fingerprint = value.substr(sep + 1);
  return record;
}

StatusOr<ListResult> Store::ListByOwner(const std::string& owner, v1::CaseState state,
                                        const std::string& after_key, size_t limit,
                                        bool copies) const {
  if (limit == 0) return Status::InvalidArgument("limit: must be positive");
  std::string prefix;
  if (copies) {
    prefix = state == v1::CASE_STATE_UNSPECIFIED ? keys::CopyPrefix(owner)
                                                 : keys::CopyStatePrefix(owner, state);
  } else {
    prefix = state == v1::CASE_STATE_UNSPECIFIED ? keys::OwnerPrefix(owner)
                                                 : keys::OwnerStatePrefix(owner, state);
  }
  std::string end = keys::PrefixEnd(prefix);
  std::string start = after_key > prefix ? after_key : prefix;

  // One snapshot so the index and the cases it names agree.
  rocksdb::ManagedSnapshot snapshot(impl_->db.get());
  std::vector<std::string> index_keys;
  bool more = false;
  Status s = impl_->Scan(
      Cf::kIndex, start, end, "list cases of " + owner,
      [&](std::string_view key, std::string_view) {
        if (key == after_key) return true;
        if (index_keys.size() == limit) {
          more = true;
          return false;
        }
        index_keys.emplace_back(key);
        return true;
      },
      snapshot.snapshot());
  if (!s.ok()) return s;

  ListResult result;
  if (index_keys.empty()) return result;
  std::vector<std::string> ids;
  std::vector<rocksdb::Slice> slices;
  ids.reserve(index_keys.size());
  for (const auto& k : index_keys) ids.emplace_back(keys::CaseIdOfOwnerIndex(k));
  for (const auto& id : ids) slices.emplace_back(id);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snapshot();
  std::vector<rocksdb::ColumnFamilyHandle*> cfs(ids.size(), impl_->cf(Cf::kCases));
  std::vector<std::string> values;
  std::vector<rocksdb::Status> statuses = impl_->db->MultiGet(ro, cfs, slices, &values);
  result.cases.reserve(ids.size());
  // One unreadable case never takes the page down: it is skipped and named.
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string key = keys::Case(ids[i]);
    if (statuses[i].IsNotFound()) {
      impl_->MarkUnreadable(Cf::kCases, key, ids[i], "case named by the index of " + owner);
      result.unreadable.push_back(ids[i]);
      continue;
    }
    if (statuses[i].IsCorruption()) {
      impl_->MarkUnreadable(Cf::kCases, key, ids[i], "case (corrupt block)");
      result.unreadable.push_back(ids[i]);
      continue;
    }
    if (!statuses[i].ok()) return FromRocks(statuses[i], "read case " + ids[i]);
    v1::Case c;
    if (impl_->KnownUnreadable(Cf::kCases, key) || !c.ParseFromString(values[i])) {
      impl_->MarkUnreadable(Cf::kCases, key, ids[i], "case");
      result.unreadable.push_back(ids[i]);
      continue;
    }
    result.cases.push_back(std::move(c));
  }
  if (more) result.next_key = index_keys.back();
  return result;
}

StatusOr<std::vector<std::string>> Store::OpenCaseIds(const std::string& owner) const {
  // Open states are contiguous in key order: one range scan, closed cases unread.
  std::string start = keys::OwnerStatePrefix(owner, v1::CASE_STATE_REPORTED);
  std::string end = keys::OwnerStatePrefix(owner, v1::CASE_STATE_VERIFIED + 1);
  std::vector<std::string> ids;
  Status s = impl_->Scan(Cf::kIndex, start, end, "list open cases of " + owner,
                         [&](std::string_view key, std::string_view) {
                           ids.emplace_back(keys::CaseIdOfOwnerIndex(key));
                           return true;
                         });
  if (!s.ok()) return s;
  return ids;
}

StatusOr<std::map<std::pair<std::string, int>, int64_t>> Store::Counts(bool copies) const {
  std::map<std::pair<std::string, int>, int64_t> counts;
  std::string bad;
  const std::string_view prefix = copies ? keys::kCopyCountPrefix : keys::kCountPrefix;
  Status s = impl_->Scan(Cf::kMeta, std::string(prefix), keys::PrefixEnd(prefix), "read counts",
                         [&](std::string_view key, std::string_view value) {
                           auto parsed = keys::ParseCount(key, prefix);
                           auto n = keys::DecodeInt64(value);
                           if (!parsed || !n) {
                             bad.assign(key);
                             return false;
                           }
                           if (*n != 0) counts[{std::string(parsed->owner), parsed->state}] = *n;
                           return true;
                         });
  if (!s.ok()) return s;
  if (!bad.empty()) return Status::Internal("malformed count record");
  return counts;
}

StatusOr<uint64_t> Store::LastCaseSeq(const std::string& prefix) const {
  auto scanned = ScanLastCaseSeq(impl_->db.get(), impl_->cf(Cf::kCases), prefix);
  if (!scanned.ok() || prefix != impl_->options.node_id) return scanned;
  // Ids acknowledged once are never handed out again, even if their cases were lost.
  return std::max(*scanned, impl_->marked_case_seq.load());
}

StatusOr<std::vector<DueTimer>> Store::DueTimers(int64_t now_ms, size_t limit) const {
  std::vector<DueTimer> due;
  if (limit == 0) return due;
  Status s =
      impl_->Scan(Cf::kTimers, "", "", "read timers", [&](std::string_view key, std::string_view) {
        auto t = keys::ParseTimer(key);
        if (!t) return true;  // skipped: one bad key must not stop every deadline behind it
        if (t->due_ms > now_ms) return false;
        due.push_back({t->due_ms, std::string(t->case_id)});
        return due.size() < limit;
      });
  if (!s.ok()) return s;
  return due;
}

StatusOr<std::optional<int64_t>> Store::NextDueMs(int64_t after_ms) const {
  std::optional<int64_t> next;
  if (after_ms == std::numeric_limits<int64_t>::max()) return next;
  // A malformed key is skipped here: it must not hide the good ones behind it.
  const int64_t from = std::max<int64_t>(0, after_ms + 1);
  Status s = impl_->Scan(Cf::kTimers, keys::Timer(from, ""), "", "read next timer",
                         [&](std::string_view key, std::string_view) {
                           auto t = keys::ParseTimer(key);
                           if (t && t->due_ms > after_ms) next = t->due_ms;
                           return !next.has_value();
                         });
  if (!s.ok()) return s;
  return next;
}

void Store::SetTimerListener(std::function<void(int64_t)> listener) {
  auto shared = std::make_shared<const std::function<void(int64_t)>>(std::move(listener));
  std::lock_guard lock(impl_->listener_mu);
  impl_->timer_listener = std::move(shared);
}

StoreStats Store::Stats() const {
  StoreStats st;
  st.commits = impl_->commits.load(std::memory_order_relaxed);
  st.wal_syncs = impl_->wal_syncs.load(std::memory_order_relaxed);
  st.stall_micros = impl_->statistics->getTickerCount(rocksdb::STALL_MICROS);
  auto prop = [&](const std::string& name) {
    uint64_t v = 0;
    return impl_->db->GetAggregatedIntProperty(name, &v) ? v : 0;
  };
  st.pending_compaction_bytes = prop(rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
  st.live_sst_bytes = prop(rocksdb::DB::Properties::kLiveSstFilesSize);
  st.memtable_bytes = prop(rocksdb::DB::Properties::kCurSizeAllMemTables);
  st.block_cache_bytes = impl_->cache->GetUsage();
  st.background_errors = impl_->health->background_errors.load(std::memory_order_relaxed);
  st.read_corruptions = g_read_corruptions.load(std::memory_order_relaxed);
  st.disk_full_refusals = impl_->disk_full_refusals.load(std::memory_order_relaxed);
  st.disk_full = impl_->read_only || impl_->health->disk_full.load();
  st.read_only = impl_->read_only;
  st.lost_writes = impl_->lost_writes;
  st.lost_cases = impl_->lost_cases;
  st.damage_accepted = impl_->damage_accepted;
  st.unreadable_records = impl_->unreadable_count.load(std::memory_order_relaxed);
  return st;
}

const std::string& Store::path() const { return impl_->options.path; }

Status Store::WriteRawForTest(const std::string& column_family, const std::string& key,
                              const std::string& value) {
  for (size_t i = 0; i < kCfNames.size(); ++i) {
    if (column_family == kCfNames[i]) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      return FromRocks(impl_->db->Put(wo, impl_->handles[i], key, value),
                       "write raw " + column_family);
    }
  }
  return Status::InvalidArgument("column_family: unknown " + column_family);
}

// ---- internal::Raw (storage/raw.h) ----

namespace internal {
namespace {
Cf CfOf(Family f) {
  switch (f) {
    case Family::kDirectives:
      return Cf::kDirectives;
    case Family::kMeta:
      return Cf::kMeta;
  }
  return Cf::kDirectives;
}
}  // namespace

void Raw::Put(Batch& b, Family f, std::string key, std::string value) {
  if (!b.rep_) b.rep_ = std::make_unique<Batch::Rep>();
  b.rep_->Add(CfOf(f), Batch::Rep::Kind::kPut, std::move(key), std::move(value));
}

void Raw::Delete(Batch& b, Family f, std::string key) {
  if (!b.rep_) b.rep_ = std::make_unique<Batch::Rep>();
  b.rep_->Add(CfOf(f), Batch::Rep::Kind::kDelete, std::move(key));
}

void Raw::AddInt64(Batch& b, Family f, std::string key, int64_t delta) {
  if (!b.rep_) b.rep_ = std::make_unique<Batch::Rep>();
  b.rep_->Add(CfOf(f), Batch::Rep::Kind::kMerge, std::move(key), keys::EncodeInt64(delta));
}

Status Raw::Get(const Store& store, Family f, std::string_view key, std::string* value) {
  rocksdb::Status s = store.impl_->db->Get(rocksdb::ReadOptions(), store.impl_->cf(CfOf(f)),
                                           rocksdb::Slice(key.data(), key.size()), value);
  return FromRocks(s, "read");
}

Status Raw::Scan(const Store& store, Family f, std::string_view start, std::string_view end,
                 std::string_view what, const ScanFn& fn) {
  return store.impl_->Scan(CfOf(f), start, end, what, fn);
}

}  // namespace internal

}  // namespace whistle::storage
