// Storage trust with real whistled processes: a damaged WAL stops start-up
// (or, with --accept-data-loss, is reported and no id is reissued), an empty
// data dir is not silently initialised, a full disk is survived, and a backup
// taken under load restores into a new node with every case and history.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/e2e/scenario.h"
#include "whistle/v1/admin.grpc.pb.h"

namespace whistle::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string HttpGet(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || colon == std::string::npos) return "";
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) > 0) {
      char buf[8192];
      for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) response.append(buf, n);
    }
  }
  close(fd);
  auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of an unlabelled series on the node's /metrics; -1 when absent.
double Metric(const WhistledProcess& node, const std::string& name) {
  std::istringstream page(HttpGet(node.metrics_address(), "/metrics"));
  for (std::string line; std::getline(page, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

Identity Admin() { return Identity{"ops", "admin", "", ""}; }

// The load here comes from one test user; the per-user limit is not under test.
constexpr char kNoRateLimit[] = "--rate-limit-per-user=0";

// Reports `n` cases and returns their ids (all acknowledged).
std::vector<std::string> ReportCases(WhistledProcess& node, int n, const std::string& tag) {
  ScenarioIds ids = DawukouIds();
  auto stub = node.cases();
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    v1::Case c;
    auto s = Report(*stub, GridWorker(ids), NeighbourDispute(ids, tag + std::to_string(i)), &c);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) break;
    out.push_back(c.id());
  }
  return out;
}

std::vector<std::string> Wals(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".log" && fs::file_size(e.path()) > 0) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> BaseFlags(const std::string& data_dir) {
  return {"--listen",
          "127.0.0.1:" + std::to_string(FreePort()),
          "--metrics-listen=",
          "--data-dir",
          data_dir,
          "--jwks-file",
          TestJwksFile()};
}

// 200 reports acknowledged, SIGKILL (they live in the WAL), `damage` done to
// the WAL: start-up refuses naming it; with --accept-data-loss the node serves
// what remains, reports the loss, and hands out no acknowledged id again.
void DamageWalThenStart(const std::function<void(const std::vector<std::string>&)>& damage,
                        bool first_case_survives) {
  TempDir dir;
  const std::string data = dir.path() + "/node";
  std::vector<std::string> acked;
  {
    WhistledProcess node(data, {kNoRateLimit});
    ASSERT_TRUE(node.running()) << node.LogTail();
    acked = ReportCases(node, 200, "wal-");
    ASSERT_EQ(acked.size(), 200u);
    node.Kill();  // SIGKILL: the acknowledged reports live in the WAL
  }
  auto wals = Wals(data);
  ASSERT_FALSE(wals.empty());
  damage(wals);
  auto [code, output] = RunWhistled(BaseFlags(data));
  EXPECT_EQ(code, 2) << output;
  EXPECT_NE(output.find("start-up failed"), std::string::npos) << output;
  EXPECT_NE(output.find("DATA_LOSS"), std::string::npos) << output;
  EXPECT_NE(output.find(data), std::string::npos) << "the message names the data dir: " << output;
  EXPECT_NE(output.find("--accept-data-loss"), std::string::npos) << output;

  WhistledProcess node(data, {kNoRateLimit, "--accept-data-loss=true"});
  ASSERT_TRUE(node.running()) << node.LogTail();
  EXPECT_EQ(Metric(node, "whistle_storage_data_loss_accepted"), 1);
  double lost = Metric(node, "whistle_storage_data_loss_cases");
  EXPECT_GT(lost, 0);
  EXPECT_LE(lost, 200);
  std::printf("200 reports acknowledged; accepted loss of at most %.0f cases (%.0f writes)\n", lost,
              Metric(node, "whistle_storage_data_loss_writes"));
  std::ifstream log(node.log_path());
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("started over lost or damaged data"), std::string::npos) << node.LogTail();
  auto fresh = ReportCases(node, 1, "after-");
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_GT(fresh[0], acked.back()) << "a lost case's id was handed out again";
  ScenarioIds ids = DawukouIds();
  v1::Case first;
  EXPECT_EQ(Get(*node.cases(), GridWorker(ids), acked.front(), &first).ok(), first_case_survives);
  // Restarted without the flag: the loss was accepted once, the start is clean.
  EXPECT_EQ(node.Terminate(), 0);
  WhistledProcess again(data, {kNoRateLimit});
  EXPECT_TRUE(again.running()) << again.LogTail();
}

TEST(StorageTrustTest, FlippedWalByteStopsStartUpUnlessLossIsAccepted) {
  DamageWalThenStart(
      [](const std::vector<std::string>& wals) {
        std::fstream f(wals.back(), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(fs::file_size(wals.back()) / 2));
        f.put('\x5a');
      },
      true);
}

TEST(StorageTrustTest, TruncatedWalStopsStartUpUnlessLossIsAccepted) {
  DamageWalThenStart(
      [](const std::vector<std::string>& wals) {
        ASSERT_GT(fs::file_size(wals.back()), 32768u);
        fs::resize_file(wals.back(), 32768);
      },
      true);
}

TEST(StorageTrustTest, DeletedWalStopsStartUpUnlessLossIsAccepted) {
  DamageWalThenStart(
      [](const std::vector<std::string>& wals) {
        for (const auto& w : wals) fs::remove(w);
      },
      false);
}

TEST(StorageTrustTest, EmptyExistingDataDirIsRefusedWithoutInit) {
  TempDir dir;  // exists and is empty, like an unmounted volume's mount point
  auto [code, output] = RunWhistled(BaseFlags(dir.path()));
  EXPECT_NE(code, 0) << output;
  EXPECT_NE(output.find("exists but is empty"), std::string::npos) << output;
  EXPECT_NE(output.find("--init-data-dir"), std::string::npos) << output;
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

// A backup under load restores into a new node: every case acknowledged
// before the backup is there, and every restored case and history equals the
// original's (reports only: later writes do not change earlier cases).
TEST(StorageTrustTest, BackupUnderLoadRestoresIntoANewNode) {
  TempDir dir;
  WhistledProcess node(dir.path() + "/live", {kNoRateLimit});
  ASSERT_TRUE(node.running()) << node.LogTail();
  ScenarioIds ids = DawukouIds();
  std::mutex mu;
  std::vector<std::string> acked;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto stub = node.cases();
    for (int i = 0; !stop.load(); ++i) {
      v1::Case c;
      auto s =
          Report(*stub, GridWorker(ids), NeighbourDispute(ids, "load-" + std::to_string(i)), &c);
      ASSERT_TRUE(s.ok()) << s.error_message();
      std::lock_guard lock(mu);
      acked.push_back(c.id());
    }
  });
  for (int i = 0; i < 300; ++i) {  // under load: some cases first (a loaded machine is slow)
    {
      std::lock_guard lock(mu);
      if (acked.size() >= 50) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  size_t before_backup;
  {
    std::lock_guard lock(mu);
    before_backup = acked.size();
  }
  auto admin = v1::AdminService::NewStub(node.channel());
  const std::string backup_dir = dir.path() + "/backup";
  v1::BackupResponse response;
  grpc::Status status;
  {
    grpc::ClientContext ctx;
    Admin().Apply(ctx);
    v1::BackupRequest request;
    request.set_dir(backup_dir);
    status = admin->Backup(&ctx, request, &response);
  }
  std::this_thread::sleep_for(300ms);
  stop.store(true);
  writer.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.dir(), backup_dir);
  EXPECT_GT(response.files(), 0u);
  ASSERT_GE(before_backup, 50u);

  // Refused: a non-admin, a relative or ".." path, an existing non-empty dir.
  auto backup = [&](const Identity& who, const std::string& d) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::BackupRequest request;
    request.set_dir(d);
    v1::BackupResponse r;
    return admin->Backup(&ctx, request, &r);
  };
  EXPECT_EQ(backup(GridWorker(ids), dir.path() + "/b2").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_FALSE(fs::exists(dir.path() + "/b2"));
  auto relative = backup(Admin(), "backups/b3");
  EXPECT_EQ(relative.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(relative.error_message().find("dir"), std::string::npos);
  EXPECT_EQ(backup(Admin(), dir.path() + "/../x").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto again = backup(Admin(), backup_dir);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << again.error_message();

  // Restore (docs/operations.md): copy the checkpoint into a data dir, start.
  fs::copy(backup_dir, dir.path() + "/restored", fs::copy_options::recursive);
  WhistledProcess restored(dir.path() + "/restored", {kNoRateLimit, "--init-data-dir=false"});
  ASSERT_TRUE(restored.running()) << restored.LogTail();
  auto live = node.cases();
  auto copy = restored.cases();
  std::vector<std::string> ids_before(acked.begin(), acked.begin() + before_backup);
  for (const auto& id : ids_before) {
    v1::Case a, b;
    ASSERT_TRUE(Get(*live, GridWorker(ids), id, &a).ok()) << id;
    auto s = Get(*copy, GridWorker(ids), id, &b);
    ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString()) << id;
    v1::GetHistoryResponse ha, hb;
    ASSERT_TRUE(History(*live, GridWorker(ids), id, &ha).ok());
    ASSERT_TRUE(History(*copy, GridWorker(ids), id, &hb).ok());
    EXPECT_EQ(ha.SerializeAsString(), hb.SerializeAsString()) << id;
  }
  // Cases that made it in after the backup started are whole too.
  int extra = 0;
  for (size_t i = before_backup; i < acked.size(); ++i) {
    v1::Case a, b;
    if (!Get(*copy, GridWorker(ids), acked[i], &b).ok()) continue;
    ++extra;
    ASSERT_TRUE(Get(*live, GridWorker(ids), acked[i], &a).ok());
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString()) << acked[i];
  }
  // The restored node takes reports, with new ids.
  auto fresh = ReportCases(restored, 1, "restored-");
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_GT(fresh[0], ids_before.back());
  std::printf("backup: %zu cases before, %d after it started, %llu files, %lld ms\n", before_backup,
              extra, static_cast<unsigned long long>(response.files()),
              static_cast<long long>(response.duration_ms()));
}

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

// A full disk: reports refused with RESOURCE_EXHAUSTED while the node stays up
// and readable; space freed, reports resume without a restart; a restart on a
// still-full volume serves reads. Nothing acknowledged is lost.
TEST(StorageTrustTest, FullDiskIsSurvived) {
  TempDir dir;
  // The volume is the data dir itself, so the node's log (<data dir>.log) stays off it.
  const std::string data = dir.path() + "/vol";
  fs::create_directory(data);
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=32m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno)
                 << "); run as root (CI does) for the full-disk test";
  }
  struct Unmount {
    std::string d;
    ~Unmount() { ::umount2(d.c_str(), MNT_DETACH); }
  } unmount{data};
  const std::string filler = data + "/filler";
  ScenarioIds ids = DawukouIds();
  std::vector<std::string> acked;
  {
    WhistledProcess node(data, {kNoRateLimit});
    ASSERT_TRUE(node.running()) << node.LogTail();
    auto stub = node.cases();
    acked = ReportCases(node, 20, "pre-");
    FillVolume(filler);
    // A report that met the full disk is held (written once space is freed), not
    // failed: its caller times out; the ones after it are refused at the door.
    auto report = [&](const std::string& request_id, v1::Case* c) {
      grpc::ClientContext ctx;
      GridWorker(ids).Apply(ctx);
      ctx.set_deadline(std::chrono::system_clock::now() + 3s);
      v1::ReportCaseRequest req;
      *req.mutable_report() = NeighbourDispute(ids, request_id);
      return stub->Report(&ctx, req, c);
    };
    grpc::Status refused;
    std::vector<std::string> held;
    for (int i = 0; i < 5000; ++i) {
      v1::Case c;
      std::string request_id = "fill-" + std::to_string(i);
      auto s = report(request_id, &c);
      if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        held.push_back(request_id);
        continue;
      }
      if (!s.ok()) {
        refused = s;
        break;
      }
      acked.push_back(c.id());
    }
    ASSERT_FALSE(refused.ok()) << "the volume never filled";
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << refused.error_message();
    EXPECT_NE(refused.error_message().find("disk full"), std::string::npos);
    EXPECT_EQ(node.HealthStatus(), 1) << "the node must stay up";
    EXPECT_EQ(Metric(node, "whistle_storage_disk_full"), 1);
    for (const auto& id : acked) {
      v1::Case c;
      ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &c).ok()) << id;
    }
    fs::remove(filler);
    grpc::Status resumed;
    for (int i = 0; i < 50; ++i) {
      v1::Case c;
      resumed = Report(*stub, GridWorker(ids), NeighbourDispute(ids, "resume"), &c);
      if (resumed.ok()) {
        acked.push_back(c.id());
        break;
      }
      std::this_thread::sleep_for(200ms);
    }
    ASSERT_TRUE(resumed.ok()) << "reports did not resume: " << resumed.error_message();
    // The held reports were written: a retry (same request id) finds each one's case.
    for (const auto& request_id : held) {
      v1::Case c;
      auto s = report(request_id, &c);
      ASSERT_TRUE(s.ok()) << request_id << ": " << s.error_message();
      acked.push_back(c.id());
    }
    EXPECT_EQ(Metric(node, "whistle_storage_disk_full"), 0);
    FillVolume(filler);
    node.Kill();
  }
  {
    // Restart on the full volume: it serves reads, refuses writes, stays up.
    WhistledProcess node(data, {kNoRateLimit});
    ASSERT_TRUE(node.running()) << node.LogTail();
    auto stub = node.cases();
    for (const auto& id : acked) {
      v1::Case c;
      ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &c).ok()) << id;
    }
    v1::Case c;
    auto s = Report(*stub, GridWorker(ids), NeighbourDispute(ids, "still-full"), &c);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_EQ(node.HealthStatus(), 1);
    node.Terminate();
  }
  fs::remove(filler);
  WhistledProcess node(data, {kNoRateLimit});
  ASSERT_TRUE(node.running()) << node.LogTail();
  for (const auto& id : acked) {
    v1::Case c;
    ASSERT_TRUE(Get(*node.cases(), GridWorker(ids), id, &c).ok()) << id;
  }
  EXPECT_EQ(ReportCases(node, 1, "after-").size(), 1u);
}

}  // namespace
}  // namespace whistle::testing
