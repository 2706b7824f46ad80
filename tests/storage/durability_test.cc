// Storage damage is never silent: crash consistency with a file system that
// forgets every unsynced write, a damaged/truncated/deleted WAL, a damaged
// SST, emptied or foreign data dirs, backups, and a full disk.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "storage/store.h"

namespace whistle::storage {
namespace {

namespace fs = std::filesystem;
using rocksdb::FileOptions;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/whistle_durability_XXXXXX";
    char* dir = mkdtemp(tmpl);
    if (dir != nullptr) path_ = dir;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string CaseId(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "n1-%012llu", static_cast<unsigned long long>(seq));
  return buf;
}

// Version k of a case: state cycles through the open states; text names k.
v1::Case Version(uint64_t seq, int k, size_t text_bytes = 0) {
  v1::Case c;
  c.set_id(CaseId(seq));
  c.set_owner_id(k % 2 == 0 ? "szs/a" : "szs/b");
  c.set_state(static_cast<v1::CaseState>(1 + (k - 1) % 6));
  c.set_reporter("worker-1");
  c.set_text("v" + std::to_string(k) + std::string(text_bytes, 'x'));
  return c;
}

v1::HistoryEntry Entry(const v1::Case& c, int k) {
  v1::HistoryEntry e;
  e.set_case_id(c.id());
  e.set_seq(k);
  e.set_to_state(c.state());
  e.set_jurisdiction_id(c.owner_id());
  e.set_at_ms(1000 * k);
  return e;
}

// Version k of case `seq` as one batch (version 1 creates it).
Batch VersionBatch(uint64_t seq, int k, size_t text_bytes = 0) {
  Batch b;
  v1::Case after = Version(seq, k, text_bytes);
  if (k == 1) {
    b.RecordTransition(nullptr, after, Entry(after, k));
  } else {
    v1::Case before = Version(seq, k - 1, text_bytes);
    b.RecordTransition(&before, after, Entry(after, k));
  }
  return b;
}

Options StoreOptions(const std::string& path) {
  Options o;
  o.path = path;
  o.node_id = "n1";
  o.init = true;
  return o;
}

// ---- a file system that can "crash" ----

// Passes every write through, remembers how much of each file was synced, and
// after Crash() fails every write. CutToSynced() then truncates each file to
// its synced size: what a power cut leaves behind (page cache gone).
class CrashFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit CrashFs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FileSystemWrapper(base) {}
  const char* Name() const override { return "CrashFs"; }

  struct State {
    uint64_t size = 0;
    uint64_t synced = 0;
  };

  void Crash() { crashed_.store(true); }
  bool crashed() const { return crashed_.load(); }

  // Returns the number of bytes forgotten.
  uint64_t CutToSynced() {
    std::lock_guard lock(mu_);
    uint64_t cut = 0;
    for (const auto& [name, st] : files_) {
      std::error_code ec;
      uint64_t size = fs::exists(name, ec) ? fs::file_size(name, ec) : 0;
      if (size > st->synced) {
        cut += size - st->synced;
        fs::resize_file(name, st->synced, ec);
      }
    }
    return cut;
  }

  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<FSWritableFile>* r, IODebugContext* d) override {
    if (crashed()) return IOStatus::IOError("crashed");
    std::unique_ptr<FSWritableFile> base;
    IOStatus s = target()->NewWritableFile(f, o, &base, d);
    if (!s.ok()) return s;
    r->reset(new File(std::move(base), Track(f, 0), this));
    return s;
  }
  IOStatus ReopenWritableFile(const std::string& f, const FileOptions& o,
                              std::unique_ptr<FSWritableFile>* r, IODebugContext* d) override {
    if (crashed()) return IOStatus::IOError("crashed");
    std::error_code ec;
    uint64_t size = fs::exists(f, ec) ? fs::file_size(f, ec) : 0;
    std::unique_ptr<FSWritableFile> base;
    IOStatus s = target()->ReopenWritableFile(f, o, &base, d);
    if (!s.ok()) return s;
    r->reset(new File(std::move(base), Track(f, size), this));
    return s;
  }
  IOStatus ReuseWritableFile(const std::string&, const std::string&, const FileOptions&,
                             std::unique_ptr<FSWritableFile>*, IODebugContext*) override {
    return IOStatus::NotSupported("CrashFs: no WAL recycling");
  }
  IOStatus RenameFile(const std::string& s, const std::string& t, const IOOptions& o,
                      IODebugContext* d) override {
    if (crashed()) return IOStatus::IOError("crashed");
    IOStatus st = target()->RenameFile(s, t, o, d);
    if (st.ok()) {
      std::lock_guard lock(mu_);
      auto it = files_.find(s);
      if (it != files_.end()) {
        files_[t] = it->second;
        files_.erase(it);
      } else {
        files_.erase(t);
      }
    }
    return st;
  }
  IOStatus DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* d) override {
    if (crashed()) return IOStatus::IOError("crashed");
    IOStatus st = target()->DeleteFile(f, o, d);
    if (st.ok()) {
      std::lock_guard lock(mu_);
      files_.erase(f);
    }
    return st;
  }
  IOStatus LinkFile(const std::string& s, const std::string& t, const IOOptions& o,
                    IODebugContext* d) override {
    if (crashed()) return IOStatus::IOError("crashed");
    return target()->LinkFile(s, t, o, d);
  }
  IOStatus Truncate(const std::string& f, size_t size, const IOOptions& o,
                    IODebugContext* d) override {
    if (crashed()) return IOStatus::IOError("crashed");
    return target()->Truncate(f, size, o, d);
  }

 private:
  class File final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<FSWritableFile>&& base, std::shared_ptr<State> st, CrashFs* fs)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(base)), st_(std::move(st)), fs_(fs) {}
    IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* d) override {
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      IOStatus s = target()->Append(data, o, d);
      if (s.ok()) Grow(data.size());
      return s;
    }
    IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& v,
                    IODebugContext* d) override {
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      IOStatus s = target()->Append(data, o, v, d);
      if (s.ok()) Grow(data.size());
      return s;
    }
    IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                              IODebugContext* d) override {
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      IOStatus s = target()->PositionedAppend(data, offset, o, d);
      if (s.ok()) SetSize(offset + data.size());
      return s;
    }
    IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                              const rocksdb::DataVerificationInfo& v, IODebugContext* d) override {
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      IOStatus s = target()->PositionedAppend(data, offset, o, v, d);
      if (s.ok()) SetSize(offset + data.size());
      return s;
    }
    IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* d) override {
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      IOStatus s = target()->Truncate(size, o, d);
      if (s.ok()) {
        std::lock_guard lock(fs_->mu_);
        st_->size = size;
        st_->synced = std::min(st_->synced, size);
      }
      return s;
    }
    IOStatus Flush(const IOOptions& o, IODebugContext* d) override {
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      return target()->Flush(o, d);
    }
    IOStatus Sync(const IOOptions& o, IODebugContext* d) override {
      // A slow disk: the crash often lands between a write and its sync.
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      IOStatus s = target()->Sync(o, d);
      if (s.ok()) MarkSynced();
      return s;
    }
    IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      IOStatus s = target()->Fsync(o, d);
      if (s.ok()) MarkSynced();
      return s;
    }
    IOStatus RangeSync(uint64_t, uint64_t, const IOOptions&, IODebugContext*) override {
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      return IOStatus::OK();  // not a durability point
    }
    IOStatus Close(const IOOptions& o, IODebugContext* d) override {
      if (fs_->crashed()) return IOStatus::IOError("crashed");
      return target()->Close(o, d);
    }

   private:
    void Grow(uint64_t n) {
      std::lock_guard lock(fs_->mu_);
      st_->size += n;
    }
    void SetSize(uint64_t n) {
      std::lock_guard lock(fs_->mu_);
      st_->size = std::max(st_->size, n);
    }
    void MarkSynced() {
      std::lock_guard lock(fs_->mu_);
      st_->synced = st_->size;
    }
    std::shared_ptr<State> st_;
    CrashFs* fs_;
  };

  std::shared_ptr<State> Track(const std::string& f, uint64_t existing) {
    std::lock_guard lock(mu_);
    auto st = std::make_shared<State>();
    st->size = existing;
    st->synced = existing;
    files_[f] = st;
    return st;
  }

  std::atomic<bool> crashed_{false};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<State>> files_;
};

struct CrashEnv {
  std::shared_ptr<CrashFs> fs = std::make_shared<CrashFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
};

// What writers were told: highest acknowledged and highest submitted version per case.
struct Ledger {
  std::mutex mu;
  std::map<uint64_t, int> acked;
  std::map<uint64_t, int> submitted;
};

// Checks the recovered store against the ledger: every acknowledged version
// is there, nothing that was never submitted, and case + history agree.
void ExpectConsistent(Store& store, Ledger& ledger, const std::string& where) {
  std::lock_guard lock(ledger.mu);
  for (const auto& [seq, submitted] : ledger.submitted) {
    int acked = ledger.acked.count(seq) ? ledger.acked[seq] : 0;
    auto got = store.GetCaseWithHistory(CaseId(seq));
    if (!got.ok()) {
      ASSERT_EQ(got.status().code(), Code::kNotFound) << where << got.status().ToString();
      ASSERT_EQ(acked, 0) << where << ": acknowledged case " << CaseId(seq) << " lost";
      continue;
    }
    const auto& [c, history] = *got;
    int k = std::stoi(c.text().substr(1));
    ASSERT_GE(k, acked) << where << ": " << CaseId(seq) << " lost acknowledged version";
    ASSERT_LE(k, submitted) << where << ": " << CaseId(seq) << " has a version never written";
    ASSERT_EQ(static_cast<int>(history.size()), k)
        << where << ": " << CaseId(seq) << " case and history disagree (batch torn)";
    ASSERT_EQ(c.SerializeAsString(), Version(seq, k).SerializeAsString()) << where;
  }
}

TEST(CrashConsistencyTest, EveryAcknowledgedBatchSurvivesManyCrashPoints) {
  std::mt19937 rng(20261127);
  constexpr int kRounds = 24;
  int acked_total = 0;
  uint64_t cut_total = 0;
  int rounds_cut = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    TempDir dir;
    Ledger ledger;
    {
      CrashEnv crash;
      Options options = StoreOptions(dir.path());
      options.rocksdb_env = crash.env.get();
      auto opened = Store::Open(options);
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      std::unique_ptr<Store> store = std::move(opened).value();

      std::atomic<bool> stop{false};
      std::vector<std::thread> writers;
      for (int w = 0; w < 4; ++w) {
        writers.emplace_back([&, w] {
          std::mt19937 local(round * 10 + w);
          uint64_t next = 1 + w * 100000;
          std::vector<uint64_t> mine;
          while (!stop.load()) {
            uint64_t seq;
            int k;
            {
              std::lock_guard lock(ledger.mu);
              if (mine.empty() || local() % 3 == 0) {
                seq = next++;
                mine.push_back(seq);
                k = 1;
              } else {
                seq = mine[local() % mine.size()];
                k = ledger.submitted[seq] + 1;
                // One write in flight per case: the next version waits for this answer.
                if (ledger.acked[seq] != k - 1) continue;
              }
              ledger.submitted[seq] = k;
            }
            Status s = store->CommitAndWait(VersionBatch(seq, k));
            if (s.ok()) {
              std::lock_guard lock(ledger.mu);
              ledger.acked[seq] = std::max(ledger.acked[seq], k);
            } else if (!crash.fs->crashed()) {
              ADD_FAILURE() << "write failed before the crash: " << s.ToString();
              return;
            } else {
              std::lock_guard lock(ledger.mu);
              ledger.acked[seq] = ledger.submitted[seq];  // unknown: lets the loop move on
              ledger.acked[seq] = std::min(ledger.acked[seq], k - 1);
              return;
            }
          }
        });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 60));
      if (round % 3 == 2) {
        // Crash while the store shuts down: memtable flush, MANIFEST and CURRENT writes.
        stop.store(true);
        for (auto& t : writers) t.join();
        std::thread closer([&] { store.reset(); });
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
        crash.fs->Crash();
        closer.join();
      } else {
        crash.fs->Crash();
        stop.store(true);
        for (auto& t : writers) t.join();
        store.reset();
      }
      uint64_t cut = crash.fs->CutToSynced();
      cut_total += cut;
      rounds_cut += cut > 0;
    }
    // Recover with the real file system, refusing any loss: no false alarm either.
    auto reopened = Store::Open(StoreOptions(dir.path()));
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    ExpectConsistent(**reopened, ledger, "round " + std::to_string(round));
    std::lock_guard lock(ledger.mu);
    for (const auto& [seq, k] : ledger.acked) acked_total += k > 0;
    EXPECT_FALSE((*reopened)->Stats().damage_accepted);
  }
  EXPECT_GT(acked_total, kRounds * 5) << "the crash points came before any write";
  EXPECT_GT(cut_total, 0u) << "no crash ever lost an unsynced byte: the test tests nothing";
  std::printf(
      "crash points: %d (%d forgot unsynced bytes), cases acknowledged: %d, unsynced bytes "
      "forgotten: %llu\n",
      kRounds, rounds_cut, acked_total, static_cast<unsigned long long>(cut_total));
}

// ---- damage at rest ----

// Writes `n` new cases, then "kills" the store: nothing more reaches the files
// (no flush at close), so the acknowledged cases live only in the WAL.
void FillAndKill(const std::string& path, uint64_t n, size_t text_bytes = 200) {
  CrashEnv crash;
  Options options = StoreOptions(path);
  options.rocksdb_env = crash.env.get();
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (uint64_t i = 1; i <= n; ++i) {
    Status s = (*store)->CommitAndWait(VersionBatch(i, 1, text_bytes));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  crash.fs->Crash();  // like SIGKILL: the page cache keeps what was written
  store->reset();
}

void FillAndClose(const std::string& path, uint64_t n, size_t text_bytes = 200) {
  auto store = Store::Open(StoreOptions(path));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // Many batches in flight at once: group commit keeps the fsyncs few.
  std::vector<std::future<Status>> pending;
  for (uint64_t i = 1; i <= n; ++i) {
    auto promise = std::make_shared<std::promise<Status>>();
    pending.push_back(promise->get_future());
    (*store)->Commit(VersionBatch(i, 1, text_bytes),
                     [promise](const Status& s) { promise->set_value(s); });
  }
  for (auto& f : pending) {
    Status s = f.get();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
}

std::vector<std::string> FilesEndingWith(const std::string& dir, const std::string& ext) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext && fs::file_size(e.path()) > 0) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "LOCK") out[e.path()] = Slurp(e.path());
  }
  return out;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// Refused with DATA_LOSS naming `words`, the files untouched; then with the
// flag it starts, reports the loss, and never hands out an acknowledged id again.
void ExpectRefusedThenAccepted(const std::string& path, const std::vector<std::string>& words,
                               uint64_t acknowledged, bool expect_lost_cases = true,
                               bool persistent = false) {
  auto before = Snapshot(path);
  auto refused = Store::Open(StoreOptions(path));
  ASSERT_FALSE(refused.ok()) << "damaged store opened silently";
  EXPECT_EQ(refused.status().code(), Code::kDataLoss) << refused.status().ToString();
  for (const auto& w : words) {
    EXPECT_NE(refused.status().message().find(w), std::string::npos)
        << "want \"" << w << "\" in: " << refused.status().message();
  }
  EXPECT_NE(refused.status().message().find("--accept-data-loss"), std::string::npos);
  EXPECT_EQ(Snapshot(path), before) << "a refused start changed the data dir";

  Options accept = StoreOptions(path);
  accept.accept_data_loss = true;
  auto opened = Store::Open(accept);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  StoreStats st = (*opened)->Stats();
  EXPECT_TRUE(st.damage_accepted);
  if (expect_lost_cases) {
    EXPECT_GT(st.lost_cases, 0u);
    EXPECT_GT(st.lost_writes, 0u);
  }
  auto last = (*opened)->LastCaseSeq("n1");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, acknowledged) << "an acknowledged case id would be handed out again";
  // The loss is reported once: the next start (without the flag) is clean. A
  // damaged SST stays damaged: it is refused again until restored.
  opened->reset();
  auto again = Store::Open(StoreOptions(path));
  if (persistent) {
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.status().code(), Code::kDataLoss);
    return;
  }
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*(*again)->LastCaseSeq("n1"), acknowledged);
}

TEST(DamageTest, KilledStoreReopensWithoutFalseAlarm) {
  TempDir dir;
  FillAndKill(dir.path(), 300);
  ASSERT_FALSE(FilesEndingWith(dir.path(), ".log").empty());
  auto store = Store::Open(StoreOptions(dir.path()));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (uint64_t i = 1; i <= 300; ++i) ASSERT_TRUE((*store)->GetCase(CaseId(i)).ok()) << i;
  EXPECT_FALSE((*store)->Stats().damage_accepted);
}

TEST(DamageTest, FlippedWalByteRefusesStart) {
  TempDir dir;
  FillAndKill(dir.path(), 300);
  auto logs = FilesEndingWith(dir.path(), ".log");
  ASSERT_FALSE(logs.empty());
  FlipByte(logs.back(), fs::file_size(logs.back()) / 2);
  ExpectRefusedThenAccepted(dir.path(), {dir.path(), "Corruption"}, 300);
}

TEST(DamageTest, TruncatedWalRefusesStart) {
  for (bool to_block : {false, true}) {
    SCOPED_TRACE(to_block ? "truncated to 32 KiB" : "truncated by 7 bytes");
    TempDir dir;
    FillAndKill(dir.path(), 300);
    auto logs = FilesEndingWith(dir.path(), ".log");
    ASSERT_FALSE(logs.empty());
    uint64_t size = fs::file_size(logs.back());
    ASSERT_GT(size, 32768u);
    fs::resize_file(logs.back(), to_block ? 32768 : size - 7);
    ExpectRefusedThenAccepted(dir.path(), {dir.path(), "acknowledged writes lost", "cases lost"},
                              300);
  }
}

TEST(DamageTest, DeletedWalRefusesStart) {
  TempDir dir;
  FillAndKill(dir.path(), 300);
  auto logs = FilesEndingWith(dir.path(), ".log");
  ASSERT_FALSE(logs.empty());
  for (const auto& l : logs) fs::remove(l);
  ExpectRefusedThenAccepted(dir.path(), {"acknowledged writes lost", "n1-000000000300"}, 300);
}

TEST(DamageTest, DamagedSstRefusesStartAndDamagedReadsAreCounted) {
  TempDir dir;
  FillAndClose(dir.path(), 2000, 400);  // closed: flushed into SST files
  auto ssts = FilesEndingWith(dir.path(), ".sst");
  ASSERT_FALSE(ssts.empty());
  std::string biggest = *std::max_element(ssts.begin(), ssts.end(), [](auto& a, auto& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
  FlipByte(biggest, fs::file_size(biggest) / 3);
  ExpectRefusedThenAccepted(dir.path(), {"SST damaged", "Corruption"}, 2000,
                            /*expect_lost_cases=*/false, /*persistent=*/true);
  // Started with the flag: a read of the damaged block says DATA_LOSS and is counted.
  Options accept = StoreOptions(dir.path());
  accept.accept_data_loss = true;
  accept.verify_checksums_on_open = false;
  auto store = Store::Open(accept);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  uint64_t before = (*store)->Stats().read_corruptions;
  int damaged = 0;
  for (uint64_t i = 1; i <= 2000; ++i) {
    auto c = (*store)->GetCase(CaseId(i));
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), Code::kDataLoss) << c.status().ToString();
      ++damaged;
    }
  }
  EXPECT_GT(damaged, 0);
  EXPECT_GE((*store)->Stats().read_corruptions, before + damaged);
}

TEST(DamageTest, StoreFilesGoneRefusesStartAndIdsAreNotReissued) {
  TempDir dir;
  FillAndClose(dir.path(), 50);
  for (const auto& e : fs::directory_iterator(dir.path())) {
    std::string name = e.path().filename();
    if (name != "WHISTLE-STORE" && name != "WHISTLE-MARKS") fs::remove_all(e.path());
  }
  ExpectRefusedThenAccepted(dir.path(), {"RocksDB files are gone"}, 50, false);
}

TEST(DamageTest, EmptyExistingDirIsRefusedWithoutInit) {
  TempDir dir;
  FillAndClose(dir.path(), 10);
  for (const auto& e : fs::directory_iterator(dir.path())) fs::remove_all(e.path());
  Options options = StoreOptions(dir.path());
  options.init = false;
  auto refused = Store::Open(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("exists but is empty"), std::string::npos);
  EXPECT_NE(refused.status().message().find("--init-data-dir"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(dir.path())) << "a refused start wrote into the directory";
}

TEST(DamageTest, MissingDirIsCreatedAndForeignDirRefused) {
  TempDir dir;
  Options options = StoreOptions(dir.path() + "/new/data");
  options.init = false;
  auto created = Store::Open(options);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(fs::exists(dir.path() + "/new/data/WHISTLE-STORE"));

  std::ofstream(dir.path() + "/notes.txt") << "not a store";
  auto foreign = Store::Open(StoreOptions(dir.path()));
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(foreign.status().message().find("no Whistle store"), std::string::npos);
}

TEST(DamageTest, StoreWithoutIdentityIsAdopted) {
  TempDir dir;
  FillAndClose(dir.path(), 10);
  fs::remove(dir.path() + "/WHISTLE-STORE");
  fs::remove(dir.path() + "/WHISTLE-MARKS");
  Options options = StoreOptions(dir.path());
  options.init = false;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(fs::exists(dir.path() + "/WHISTLE-STORE"));
  EXPECT_EQ(*(*store)->LastCaseSeq("n1"), 10u);
}

// ---- backup ----

TEST(BackupTest, CheckpointUnderLoadRestoresEveryAcknowledgedCase) {
  TempDir dir;
  Ledger ledger;
  auto opened = Store::Open(StoreOptions(dir.path() + "/live"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Store> store = std::move(opened).value();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint64_t next = 1;
    while (!stop.load()) {
      uint64_t seq = next;
      int k = 1;
      if (next > 3 && next % 2 == 0) {
        seq = next / 2;  // a later version of an earlier case
        std::lock_guard lock(ledger.mu);
        k = ledger.acked[seq] + 1;
        ledger.submitted[seq] = k;
      } else {
        std::lock_guard lock(ledger.mu);
        ledger.submitted[seq] = 1;
      }
      ++next;
      Status s = store->CommitAndWait(VersionBatch(seq, k));
      ASSERT_TRUE(s.ok()) << s.ToString();
      std::lock_guard lock(ledger.mu);
      ledger.acked[seq] = k;
    }
  });
  // Under load: wait until the writer has some history (a loaded machine is slow).
  for (int i = 0; i < 300; ++i) {
    {
      std::lock_guard lock(ledger.mu);
      if (ledger.acked.size() >= 50) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::map<uint64_t, int> acked_before;
  {
    std::lock_guard lock(ledger.mu);
    acked_before = ledger.acked;
  }
  auto info = store->Backup(dir.path() + "/backup");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop.store(true);
  writer.join();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_GT(info->files, 0u);
  ASSERT_GE(acked_before.size(), 50u);

  // Refusals: relative path, existing non-empty dir, inside the data dir.
  EXPECT_EQ(store->Backup("relative/dir").status().code(), Code::kInvalidArgument);
  auto again = store->Backup(dir.path() + "/backup");
  EXPECT_EQ(again.status().code(), Code::kFailedPrecondition) << again.status().ToString();
  EXPECT_EQ(store->Backup(dir.path() + "/live/sub").status().code(), Code::kInvalidArgument);

  // Restore: copy the checkpoint into a new data dir and open it like whistled does.
  fs::copy(dir.path() + "/backup", dir.path() + "/restored", fs::copy_options::recursive);
  Options restore = StoreOptions(dir.path() + "/restored");
  restore.init = false;
  auto restored = Store::Open(restore);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_FALSE((*restored)->Stats().damage_accepted);
  for (const auto& [seq, k] : acked_before) {
    auto got = (*restored)->GetCaseWithHistory(CaseId(seq));
    ASSERT_TRUE(got.ok()) << CaseId(seq) << ": " << got.status().ToString();
    int version = std::stoi(got->first.text().substr(1));
    EXPECT_GE(version, k) << CaseId(seq) << " older than acknowledged before the backup";
    // Every case and its history equal what the live store wrote for that version.
    auto live = store->GetCaseWithHistory(CaseId(seq));
    ASSERT_TRUE(live.ok());
    ASSERT_LE(static_cast<size_t>(version), live->second.size());
    EXPECT_EQ(got->first.SerializeAsString(), Version(seq, version).SerializeAsString());
    ASSERT_EQ(got->second.size(), static_cast<size_t>(version));
    for (int i = 0; i < version; ++i) {
      EXPECT_EQ(got->second[i].SerializeAsString(), live->second[i].SerializeAsString());
    }
  }
  // The restored store takes writes, with ids above the backup's.
  EXPECT_TRUE((*restored)->CommitAndWait(VersionBatch(999999, 1)).ok());
}

// ---- full disk ----

// A small tmpfs mounted for the test (CI runs as root); unmounted at the end.
class Tmpfs {
 public:
  explicit Tmpfs(const std::string& dir, const char* size) : dir_(dir) {
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, size) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// Fills the rest of the volume with `path` (a file the test deletes to free space).
void FillVolume(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ASSERT_GE(fd, 0);
  std::string block(64 << 10, 'f');
  while (::write(fd, block.data(), block.size()) > 0) {
  }
  std::string small(512, 'f');
  while (::write(fd, small.data(), small.size()) > 0) {
  }
  ::close(fd);
}

std::future<Status> CommitAsync(Store& store, Batch batch) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  store.Commit(std::move(batch), [promise](const Status& s) { promise->set_value(s); });
  return future;
}

// Writes through the door (AdmitWrite, as the services do) until it refuses.
// Batches that met the full disk are held, not failed: returned in *held.
Status WriteUntilRefused(Store& store, uint64_t& next, std::vector<uint64_t>& acked,
                         std::vector<std::pair<uint64_t, std::future<Status>>>* held) {
  for (int i = 0; i < 100000; ++i) {
    Status admitted = store.AdmitWrite();
    if (!admitted.ok()) return admitted;
    uint64_t id = next++;
    auto f = CommitAsync(store, VersionBatch(id, 1, 2000));
    if (f.wait_for(std::chrono::seconds(3)) == std::future_status::timeout) {
      held->emplace_back(id, std::move(f));
      continue;
    }
    Status s = f.get();
    if (!s.ok()) return s;  // a full disk must not fail a batch
    acked.push_back(id);
  }
  return Status::Internal("the volume never filled");
}

TEST(FullDiskTest, WritesRefusedReadsServedResumedWithoutRestart) {
  TempDir dir;
  Tmpfs volume(dir.path(), "size=24m");
  if (!volume.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs (" << volume.error()
                 << "); run as root (CI does) for the full-disk test";
  }
  const std::string data = dir.path() + "/data";
  const std::string filler = dir.path() + "/filler";
  std::vector<uint64_t> acked;
  uint64_t next = 1;
  {
    auto opened = Store::Open(StoreOptions(data));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Store& store = **opened;
    for (int i = 0; i < 200; ++i, ++next) {
      ASSERT_TRUE(store.CommitAndWait(VersionBatch(next, 1, 2000)).ok());
      acked.push_back(next);
    }
    FillVolume(filler);
    std::vector<std::pair<uint64_t, std::future<Status>>> held;
    Status refused = WriteUntilRefused(store, next, acked, &held);
    EXPECT_EQ(refused.code(), Code::kResourceExhausted) << refused.ToString();
    EXPECT_NE(refused.message().find("disk full"), std::string::npos) << refused.ToString();
    EXPECT_FALSE(held.empty()) << "the batch that met the full disk should be held";
    EXPECT_TRUE(store.Stats().disk_full);

    // Further writes are refused at the door at once (no retry storm), reads still work.
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
      Status s = store.AdmitWrite();
      EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    EXPECT_GE(store.Stats().disk_full_refusals, 20u);
    for (uint64_t id : acked) ASSERT_TRUE(store.GetCase(CaseId(id)).ok()) << CaseId(id);

    // Space freed: the held batches are written and answered, writes resume, no restart.
    fs::remove(filler);
    for (auto& [id, f] : held) {
      ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready)
          << "held batch not written after space was freed";
      Status s = f.get();
      ASSERT_TRUE(s.ok()) << s.ToString();
      acked.push_back(id);
    }
    EXPECT_TRUE(store.AdmitWrite().ok());
    ASSERT_TRUE(store.CommitAndWait(VersionBatch(next, 1, 2000)).ok());
    acked.push_back(next++);
    EXPECT_FALSE(store.Stats().disk_full);
    for (uint64_t id : acked) ASSERT_TRUE(store.GetCase(CaseId(id)).ok()) << CaseId(id);

    // Full again, then the store closes on a full volume (held batches were never
    // acknowledged and are dropped unanswered).
    FillVolume(filler);
    held.clear();
    std::vector<std::pair<uint64_t, std::future<Status>>> held2;
    EXPECT_EQ(WriteUntilRefused(store, next, acked, &held2).code(), Code::kResourceExhausted);
    opened->reset();
  }
  // Restart on the still-full volume (whatever the close freed is taken too):
  // it opens read-only and serves reads.
  FillVolume(filler);
  {
    auto opened = Store::Open(StoreOptions(data));
    ASSERT_TRUE(opened.ok()) << "restart on a full volume: " << opened.status().ToString();
    Store& store = **opened;
    for (uint64_t id : acked) ASSERT_TRUE(store.GetCase(CaseId(id)).ok()) << CaseId(id);
    EXPECT_TRUE(store.Stats().read_only);
    EXPECT_TRUE(store.Stats().disk_full);
    Status s = store.AdmitWrite();
    EXPECT_EQ(s.code(), Code::kResourceExhausted) << s.ToString();
    EXPECT_NE(s.message().find("restart"), std::string::npos) << s.ToString();
  }
  // Space freed, restarted: everything acknowledged is there and writes work.
  fs::remove(filler);
  auto opened = Store::Open(StoreOptions(data));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  for (uint64_t id : acked) ASSERT_TRUE((*opened)->GetCase(CaseId(id)).ok()) << CaseId(id);
  EXPECT_TRUE((*opened)->AdmitWrite().ok());
  EXPECT_TRUE((*opened)->CommitAndWait(VersionBatch(next, 1, 10)).ok());
  EXPECT_FALSE((*opened)->Stats().damage_accepted);
}

}  // namespace
}  // namespace whistle::storage
