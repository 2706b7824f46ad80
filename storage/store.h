// Store: the only code that touches RocksDB. Owns the database, its column
// families and the group-commit thread. Reads may be called from any thread;
// Commit() never blocks the caller on an fsync.
//
// Column families and keys (\0 = one 0x00 byte; it ends every variable-length
// id so that owner "a" never matches a prefix scan of owner "a/b"):
//   cases    <case_id>                               -> v1::Case
//   history  <case_id> \0 <seq, 8 bytes BE>           -> v1::HistoryEntry
//   index    o/<owner> \0 <state 2 digits> / <case_id> -> ""   (owner/state listing)
//            r/<reporter> \0 <request_id>             -> case_id [\0 fingerprint] (report
//            idempotency)
//   timers   <due_ms 16 digits> / <case_id>            -> ""   (next deadline of a case)
//   meta     count/<owner> \0 <state 2 digits>        -> int64 little-endian, merged by addition
//   link     o/<peer> \0 <seq, 8 bytes BE>            -> v1::OutboxRecord (node-link outbox)
//            i/<peer>                                -> int64: last envelope applied from peer
//            a/<peer>                                -> int64: last entry the peer acknowledged
//   directives  see storage/directive_store.h (directive records, receipts, progress counts)
//   changes  <seq, 8 bytes BE>                         -> v1::Change (change log, numbered
//            by the commit thread; the live watch reads it)
//   index    d/<department> \0 <0|1> <due 16 digits> / <case_id> -> "" (department inbox:
//            0 = pending report-in; a hint, checked against the case on read)
//   index    n/<notice_to> \0 <inverted noticed_at 16 digits> / <case_id> -> "" (supervision
//            notices (督办) to a level, newest first; a hint, checked against the case on read)
//   meta     changes/trimmed                         -> int64: change log trimmed up to here
//
// A node keeps the cases it owns (indexed, counted, timed) and read-only
// copies of cases owned on other nodes that it touched or that lie in its
// subtree (cases + history only).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "whistle/v1/case.pb.h"
#include "whistle/v1/watch.pb.h"

namespace whistle::storage {

namespace internal {
struct Raw;  // storage/raw.h: key-value access for the other record kinds of storage/
}

struct Options {
  std::string path;
  bool sync = true;                  // fsync the WAL before acknowledging (always on in production)
  size_t max_group_bytes = 4 << 20;  // upper bound of one group commit
  // Case ids "<node_id>-<12 digits>" written here are tracked in WHISTLE-MARKS:
  // LastCaseSeq(node_id) never goes below an acknowledged id, even after a loss.
  std::string node_id;
  // A missing directory is always initialised; an existing EMPTY one only with
  // `init` (an empty dir may be a volume that failed to mount).
  bool init = false;
  // Start even when the store lost acknowledged data or is damaged; the loss
  // is logged and reported in Stats(). Off: Open returns DATA_LOSS instead.
  bool accept_data_loss = false;
  // Read every SST block once at open (catches a damaged SST before serving).
  bool verify_checksums_on_open = true;
  // Tests only: a rocksdb::Env (e.g. over a fault-injecting FileSystem). Not owned.
  void* rocksdb_env = nullptr;
  // Change log trim (checked at most once a second by the commit thread): the
  // oldest entries go once the log holds more than this many, or once older.
  uint64_t change_log_max_entries = 1'000'000;
  int64_t change_log_max_age_ms = 7LL * 24 * 3600 * 1000;
  // The node's business clock (change-log ages, stamps); null = the system
  // clock. Not owned; must outlive the store.
  const core::Clock* clock = nullptr;
};

// The writes of one transition. Build it, then hand it to Store::Commit.
class Batch {
 public:
  Batch();
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;

  // Records a transition: puts `after`, moves its owner/state index entry and
  // per-owner state counts from `before` (nullptr for a new case), moves its
  // timer to after.next_deadline_ms and appends `entry` to the history.
  void RecordTransition(const v1::Case* before, const v1::Case& after,
                        const v1::HistoryEntry& entry);
  // Puts `after`. `owned_before` is the stored copy when this node owned it
  // (nullptr: new here, or a read-only copy); `owned` says whether this node
  // owns `after`. Owner index, counts and timer follow ownership; a case not
  // owned here is in the copy index and copy counts instead, and
  // `copy_before` (the read-only copy stored before, if any) leaves them.
  void PutCase(const v1::Case* owned_before, const v1::Case& after, bool owned,
               const v1::Case* copy_before = nullptr);
  void PutHistory(const v1::HistoryEntry& entry);
  // Appends an outbox entry for `peer`; the store numbers it (1, 2, 3 ... per
  // peer, in commit order) when the batch is written.
  void Send(const std::string& peer, const std::string& case_id, int64_t now_ms);
  // Records that every envelope from `peer` up to `seq` is applied.
  void RecordInbox(const std::string& peer, uint64_t seq);
  // Appends `change` to the change log; the store numbers it (1, 2, 3 ... in
  // commit order) when the batch is written. PutHistory calls it for cases.
  // A change without at_ms gets the store clock's time when written.
  void RecordChange(const v1::Change& change);
  // Remembers reporter+request_id -> case_id and the fingerprint of the
  // report's content (report idempotency; value "<case_id>\0<fingerprint>").
  void RecordRequest(const std::string& reporter, const std::string& request_id,
                     const std::string& case_id, const std::string& fingerprint = "");
  size_t ByteSize() const;
  bool empty() const;

 private:
  friend class Store;
  friend struct internal::Raw;
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

struct ListResult {
  std::vector<v1::Case> cases;
  // Resume after this index key; "" = this owner is exhausted. Raw key bytes
  // (contains 0x00): encode it before putting it in a page token.
  std::string next_key;
  // Case ids the index names whose record is missing or does not parse: left
  // out of `cases` (they count towards `limit`), logged once, counted.
  std::vector<std::string> unreadable;
};

struct OutboxEntry {
  uint64_t seq;
  std::string case_id;
  int64_t written_at_ms;
};

struct ChangeEntry {
  uint64_t seq;
  v1::Change change;  // token unset
};

// A department inbox row: the case and the department's place in it.
struct InboxRow {
  v1::Case c;
  bool pending = false;
  int64_t report_in_by_ms = 0;
};
struct InboxPage {
  std::vector<InboxRow> rows;
  std::string next_key;  // raw key bytes; "" = nothing follows
};

// Cases whose standing supervision notice is addressed to one level.
struct NoticePage {
  std::vector<v1::Case> cases;
  std::string next_key;  // raw key bytes; "" = nothing follows
};

struct DueTimer {
  int64_t due_ms;
  std::string case_id;
};

// Figures for metrics: RocksDB properties and commit-path counters.
struct StoreStats {
  uint64_t commits = 0;       // batches acknowledged
  uint64_t wal_syncs = 0;     // group writes (one WAL sync each; 0 when sync is off)
  uint64_t stall_micros = 0;  // RocksDB write stall time
  uint64_t pending_compaction_bytes = 0;
  uint64_t live_sst_bytes = 0;
  uint64_t memtable_bytes = 0;
  uint64_t block_cache_bytes = 0;
  // Distinct records found unreadable since start (a case or history entry
  // that does not parse, or an index entry naming a missing case): each is
  // logged once and skipped by listings, the timer and history reads.
  uint64_t unreadable_records = 0;
  // Damage and faults (see docs/operations.md).
  uint64_t background_errors = 0;   // RocksDB background errors (flush, compaction, WAL)
  uint64_t read_corruptions = 0;    // reads that met a checksum mismatch or corrupt block
  uint64_t disk_full_refusals = 0;  // batches refused with RESOURCE_EXHAUSTED: disk full
  bool disk_full = false;           // writes are refused until space is freed
  bool read_only = false;           // opened read-only (disk full at start-up)
  uint64_t lost_writes = 0;         // RocksDB writes lost, accepted at this start
  uint64_t lost_cases = 0;          // this node's case ids acknowledged but not recovered
  bool damage_accepted = false;     // started with accept_data_loss over damage
};

struct BackupInfo {
  std::string dir;
  uint64_t sequence = 0;  // RocksDB sequence number the checkpoint holds
  uint64_t files = 0;
  uint64_t bytes = 0;
};

class Store {
 public:
  using Done = std::function<void(const Status&)>;

  static StatusOr<std::unique_ptr<Store>> Open(const Options& options);
  // Drains the commit queue (every queued batch is written and answered),
  // then closes the database.
  ~Store();

  // Queues `batch`; `done` runs on the commit thread once the batch is durable
  // (or failed). Batches are written in the order Commit was called, many per
  // WAL sync (group commit); a failed write fails every batch of its group.
  // `done` may be empty; it must not block on another commit (no CommitAndWait
  // inside it: that would wait on its own thread).
  //
  // A full disk fails no batch: the group is held and retried once a second
  // until it fits (callers wait); a store closing on a full disk drops held
  // batches unanswered (never acknowledged). Ask AdmitWrite first.
  void Commit(Batch batch, Done done);
  // OK, or RESOURCE_EXHAUSTED ("disk full: ...") while the disk is full or the
  // store was opened read-only on a full volume. Callers refuse new writes on
  // it before changing anything. Counted; retries resuming at most once a second.
  Status AdmitWrite();
  // Called on the answer thread with (peer, seq) for every outbox entry of a
  // written group, before that group's `done` callbacks. Set before use.
  void SetOutboxListener(std::function<void(const std::string&, uint64_t)> listener);
  // Called on the answer thread with the highest change-log seq of each written
  // batch that has changes, before its `done` callback. May be set (or
  // replaced, or cleared with {}) while the store runs.
  void SetChangeListener(std::function<void(uint64_t)> listener);
  // Commit and wait; for tests and start-up. Not from a `done` callback.
  Status CommitAndWait(Batch batch);

  // NOT_FOUND when absent.
  // DATA_LOSS naming the case when its record does not parse.
  StatusOr<v1::Case> GetCase(const std::string& case_id) const;
  // An entry that does not parse: DATA_LOSS naming case and seq, or, with
  // `unreadable_seqs`, left out and its seq appended there.
  StatusOr<std::vector<v1::HistoryEntry>> History(
      const std::string& case_id, std::vector<int64_t>* unreadable_seqs = nullptr) const;
  // Case id of an earlier report with this reporter + request id; NOT_FOUND if none.
  StatusOr<std::string> FindRequest(const std::string& reporter,
                                    const std::string& request_id) const;
  // The same with the fingerprint recorded with it ("" for records written
  // before fingerprints were kept).
  struct RequestRecord {
    std::string case_id;
    std::string fingerprint;
  };
  StatusOr<RequestRecord> FindRequestRecord(const std::string& reporter,
                                            const std::string& request_id) const;
  // Cases owned by `owner`, in `state` (UNSPECIFIED = all), in index-key order,
  // starting after `after_key` ("" = from the start), at most `limit` (> 0).
  // Index and cases are read from one snapshot.
  // `copies`: the read-only copies of cases `owner` owns on other nodes instead.
  StatusOr<ListResult> ListByOwner(const std::string& owner, v1::CaseState state,
                                   const std::string& after_key, size_t limit,
                                   bool copies = false) const;
  // Case ids owned by `owner` in an open state (for actors warming up).
  StatusOr<std::vector<std::string>> OpenCaseIds(const std::string& owner) const;
  // (owner, state) -> number of cases; zero counts are left out. Reads the
  // small counts table only.
  // `copies`: the copy counts instead.
  StatusOr<std::map<std::pair<std::string, int>, int64_t>> Counts(bool copies = false) const;
  // Highest sequence number among case ids "<prefix>-<12 digits>"; 0 if none.
  StatusOr<uint64_t> LastCaseSeq(const std::string& prefix) const;
  // Timers due at or before `now_ms`, earliest first, at most `limit`.
  StatusOr<std::vector<DueTimer>> DueTimers(int64_t now_ms, size_t limit) const;
  // The earliest timer due after `after_ms` (one seek), or nullopt if none.
  StatusOr<std::optional<int64_t>> NextDueMs(int64_t after_ms) const;
  // Called on the answer thread with the earliest timer each written batch
  // puts, before that batch's `done` (the deadline timer wakes for it). May
  // be set, replaced or cleared ({}) while the store runs.
  void SetTimerListener(std::function<void(int64_t due_ms)> listener);

  // The case and its whole history, read from one snapshot.
  StatusOr<std::pair<v1::Case, std::vector<v1::HistoryEntry>>> GetCaseWithHistory(
      const std::string& case_id) const;

  // Outbox of `peer`: entries after `after_seq`, at most `limit`, in order.
  StatusOr<std::vector<OutboxEntry>> ReadOutbox(const std::string& peer, uint64_t after_seq,
                                                size_t limit) const;
  // Deletes the entries of `peer` up to `seq` (acknowledged). Not synced: a
  // lost trim only causes a resend, which the receiver skips.
  Status TrimOutbox(const std::string& peer, uint64_t seq);
  // Highest seq `peer` acknowledged (trimmed up to; 0 if none).
  uint64_t AckedOutboxSeq(const std::string& peer) const;
  // Highest seq written for `peer` (0 if none).
  uint64_t LastOutboxSeq(const std::string& peer) const;
  // Last envelope from `peer` applied durably (0 if none).
  StatusOr<uint64_t> InboxSeq(const std::string& peer) const;

  // Change log entries after `after_seq`, at most `limit`, in order.
  // OUT_OF_RANGE when entries right after `after_seq` were trimmed, or
  // `after_seq` is beyond the last written entry.
  StatusOr<std::vector<ChangeEntry>> ReadChanges(uint64_t after_seq, size_t limit) const;
  // Highest change seq written (0 if none) and the seq the log is trimmed up to.
  uint64_t LastChangeSeq() const;
  uint64_t TrimmedChangeSeq() const;

  // Cases `department` is summoned or dispatched to (pending first, by report-in
  // deadline), after `after_key`, at most `limit`. Stale index rows are skipped.
  StatusOr<InboxPage> DepartmentInbox(const std::string& department, const std::string& after_key,
                                      size_t limit) const;
  // Cases with a standing supervision notice (督办) to `jurisdiction`, newest
  // notice first, after `after_key`, at most `limit`. Stale rows are skipped.
  StatusOr<NoticePage> SupervisionNotices(const std::string& jurisdiction,
                                          const std::string& after_key, size_t limit) const;
  // Cases reported by `reporter` (by request id), after `after_key`, at most `limit`.
  StatusOr<ListResult> ReportedBy(const std::string& reporter, const std::string& after_key,
                                  size_t limit) const;

  StoreStats Stats() const;
  const std::string& path() const;

  // Tests only: puts `value` under `key` of column family `column_family`
  // ("cases", "history", ...) as is, bypassing every check (poisoned records).
  Status WriteRawForTest(const std::string& column_family, const std::string& key,
                         const std::string& value);

  // A consistent checkpoint of the running store into `dir` (absolute; must
  // not exist or be empty; same filesystem gives hard links). The result is a
  // data directory: copy it into place and start whistled on it.
  StatusOr<BackupInfo> Backup(const std::string& dir);

 private:
  friend struct internal::Raw;
  struct Impl;
  // Walks index rows `<prefix>…/<case_id>` after `after_key` (hints: each
  // case is read and `keep` says whether the row still stands, adding it to
  // the page if so) until `limit` were kept; `*next_key` set when more follow.
  Status ScanCaseIndex(const std::string& prefix, const std::string& after_key, size_t limit,
                       const std::string& what,
                       const std::function<bool(std::string_view key, v1::Case& c)>& keep,
                       std::string* next_key) const;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace whistle::storage
