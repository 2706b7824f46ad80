// Internal to storage/: the two small files whistled keeps beside RocksDB in
// its data directory, written with plain POSIX I/O.
//
//   WHISTLE-STORE  identity, written once when the store is initialised. A
//                  directory without it is not silently taken for a new store.
//   WHISTLE-MARKS  durable marks: the last RocksDB sequence number that was
//                  acknowledged to a caller and the highest case sequence
//                  acknowledged for this node's id prefix. Rewritten (two
//                  alternating checksummed slots, fdatasync) before a group
//                  commit is answered, so start-up can tell when the WAL or an
//                  SST lost something a caller was told is durable, and ids
//                  are never handed out twice.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace whistle::storage::internal {

inline constexpr char kIdentityFile[] = "WHISTLE-STORE";
inline constexpr char kMarksFile[] = "WHISTLE-MARKS";

enum class DirState {
  kMissing,       // the path does not exist
  kEmpty,         // an existing, empty directory
  kStore,         // identity and RocksDB files (CURRENT) present
  kLegacy,        // RocksDB files without identity (a store from before identities)
  kIdentityOnly,  // identity present, RocksDB's CURRENT gone
  kForeign,       // other files, no identity, no CURRENT
  kNotDirectory,  // exists but is not a directory
};

DirState InspectDir(const std::string& path);
const char* DirStateName(DirState state);

// Writes WHISTLE-STORE (temporary file, fsync, rename, fsync of the directory).
Status WriteIdentity(const std::string& dir, const std::string& node_id);
// The "id" line of WHISTLE-STORE, or "" when unreadable.
std::string ReadStoreId(const std::string& dir);

struct Marks {
  uint64_t acked_seq = 0;  // RocksDB sequence number acknowledged to callers
  uint64_t case_seq = 0;   // highest "<node_id>-<12 digits>" sequence acknowledged
  uint64_t id_floor = 0;   // case seqs at or below it are never handed out (survives a loss)
};

// WHISTLE-MARKS. Not thread-safe: one writer (the store's answer thread, or
// start-up before it runs).
class MarkFile {
 public:
  // Opens `dir`/WHISTLE-MARKS; creates it (zero marks) when `create`.
  // NOT_FOUND when it is missing and !create; DATA_LOSS when no slot parses.
  static StatusOr<std::unique_ptr<MarkFile>> Open(const std::string& dir, bool create);
  ~MarkFile();
  MarkFile(const MarkFile&) = delete;
  MarkFile& operator=(const MarkFile&) = delete;

  const Marks& marks() const { return marks_; }
  // Writes the other slot with a higher generation; fdatasync when `sync`.
  Status Write(const Marks& marks, bool sync);

  // Writes a fresh marks file into `dir` (for a checkpoint), synced.
  static Status WriteNew(const std::string& dir, const Marks& marks);

 private:
  MarkFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
  Marks marks_;
  uint64_t generation_ = 0;
};

}  // namespace whistle::storage::internal
