#include "storage/data_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace whistle::storage::internal {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kSlotMagic = 0x57484d31;  // "WHM1"
constexpr size_t kSlotBytes = 512;           // one sector per slot: a torn write spoils one slot
constexpr size_t kSlotFields = 5;            // magic+pad, generation, acked_seq, case_seq, id_floor

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// FNV-1a 64: detects a torn or garbled slot (not an adversary).
uint64_t Hash(const unsigned char* data, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 1099511628211ULL;
  }
  return h;
}

void Put64(unsigned char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint64_t Get64(const unsigned char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(in[i]) << (8 * i);
  return v;
}

void EncodeSlot(uint64_t generation, const Marks& m, unsigned char* slot) {
  std::memset(slot, 0, kSlotBytes);
  Put64(slot, kSlotMagic);
  Put64(slot + 8, generation);
  Put64(slot + 16, m.acked_seq);
  Put64(slot + 24, m.case_seq);
  Put64(slot + 32, m.id_floor);
  Put64(slot + 8 * kSlotFields, Hash(slot, 8 * kSlotFields));
}

bool DecodeSlot(const unsigned char* slot, uint64_t* generation, Marks* m) {
  if (Get64(slot) != kSlotMagic) return false;
  if (Get64(slot + 8 * kSlotFields) != Hash(slot, 8 * kSlotFields)) return false;
  *generation = Get64(slot + 8);
  m->acked_seq = Get64(slot + 16);
  m->case_seq = Get64(slot + 24);
  m->id_floor = Get64(slot + 32);
  return true;
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Unavailable(Errno("open " + dir));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::Unavailable(Errno("fsync " + dir));
  return Status::Ok();
}

Status WriteAll(int fd, const unsigned char* data, size_t n, off_t offset,
                const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOSPC)
        return Status(Code::kResourceExhausted, Errno("disk full: write " + path));
      return Status::Unavailable(Errno("write " + path));
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return Status::Ok();
}

}  // namespace

DirState InspectDir(const std::string& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return DirState::kMissing;
  if (!fs::is_directory(st)) return DirState::kNotDirectory;
  bool identity = fs::exists(fs::path(path) / kIdentityFile, ec);
  bool current = fs::exists(fs::path(path) / "CURRENT", ec);
  if (identity && current) return DirState::kStore;
  if (identity) return DirState::kIdentityOnly;
  if (current) return DirState::kLegacy;
  return fs::is_empty(path, ec) && !ec ? DirState::kEmpty : DirState::kForeign;
}

const char* DirStateName(DirState state) {
  switch (state) {
    case DirState::kMissing:
      return "missing";
    case DirState::kEmpty:
      return "empty";
    case DirState::kStore:
      return "store";
    case DirState::kLegacy:
      return "legacy";
    case DirState::kIdentityOnly:
      return "identity-only";
    case DirState::kForeign:
      return "foreign";
    case DirState::kNotDirectory:
      return "not-a-directory";
  }
  return "unknown";
}

Status WriteIdentity(const std::string& dir, const std::string& node_id) {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char id[40];
  std::snprintf(id, sizeof(id), "%016llx%016llx", static_cast<unsigned long long>(gen()),
                static_cast<unsigned long long>(gen()));
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::ostringstream text;
  text << "whistle-store 1\nid " << id << "\ncreated_unix " << now << "\nnode "
       << (node_id.empty() ? "-" : node_id) << "\n";
  const std::string body = text.str();
  const std::string final_path = (fs::path(dir) / kIdentityFile).string();
  const std::string tmp = final_path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Unavailable(Errno("create " + tmp));
  Status s = WriteAll(fd, reinterpret_cast<const unsigned char*>(body.data()), body.size(), 0, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::Unavailable(Errno("fsync " + tmp));
  ::close(fd);
  if (!s.ok()) return s;
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    return Status::Unavailable(Errno("rename " + tmp));
  }
  return SyncDir(dir);
}

std::string ReadStoreId(const std::string& dir) {
  std::ifstream in(fs::path(dir) / kIdentityFile);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("id ", 0) == 0) return line.substr(3);
  }
  return "";
}

StatusOr<std::unique_ptr<MarkFile>> MarkFile::Open(const std::string& dir, bool create) {
  const std::string path = (fs::path(dir) / kMarksFile).string();
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (!create) return Status::NotFound(path + " is missing");
    Status s = WriteNew(dir, Marks{});
    if (!s.ok()) return s;
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (fd < 0) return Status::Unavailable(Errno("open " + path));
  std::unique_ptr<MarkFile> file(new MarkFile(fd, path));
  unsigned char buf[2 * kSlotBytes] = {};
  ssize_t n = ::pread(fd, buf, sizeof(buf), 0);
  if (n < 0) return Status::Unavailable(Errno("read " + path));
  bool any = false;
  for (size_t slot = 0; slot < 2; ++slot) {
    if (static_cast<size_t>(n) < (slot + 1) * kSlotBytes) break;
    uint64_t gen = 0;
    Marks m;
    if (DecodeSlot(buf + slot * kSlotBytes, &gen, &m) && (!any || gen > file->generation_)) {
      file->generation_ = gen;
      file->marks_ = m;
      any = true;
    }
  }
  if (!any) return Status::DataLoss(path + " is damaged: no valid slot");
  return file;
}

MarkFile::~MarkFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status MarkFile::Write(const Marks& marks, bool sync) {
  unsigned char slot[kSlotBytes];
  const uint64_t gen = generation_ + 1;
  EncodeSlot(gen, marks, slot);
  Status s = WriteAll(fd_, slot, kSlotBytes, static_cast<off_t>((gen % 2) * kSlotBytes), path_);
  if (!s.ok()) return s;
  if (sync && ::fdatasync(fd_) != 0) {
    if (errno == ENOSPC)
      return Status(Code::kResourceExhausted, Errno("disk full: fdatasync " + path_));
    return Status::Unavailable(Errno("fdatasync " + path_));
  }
  generation_ = gen;
  marks_ = marks;
  return Status::Ok();
}

Status MarkFile::WriteNew(const std::string& dir, const Marks& marks) {
  const std::string path = (fs::path(dir) / kMarksFile).string();
  const std::string tmp = path + ".tmp";
  unsigned char buf[2 * kSlotBytes];
  EncodeSlot(1, marks, buf + kSlotBytes);  // slot 1 = generation 1
  EncodeSlot(0, marks, buf);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Unavailable(Errno("create " + tmp));
  Status s = WriteAll(fd, buf, sizeof(buf), 0, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::Unavailable(Errno("fsync " + tmp));
  ::close(fd);
  if (!s.ok()) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::Unavailable(Errno("rename " + tmp));
  return SyncDir(dir);
}

}  // namespace whistle::storage::internal
