#include "services/admin_service.h"

#include <chrono>
#include <mutex>

#include "core/log.h"
#include "core/text.h"
#include "services/call.h"

namespace whistle::services {

namespace {
constexpr size_t kMaxDirBytes = 1024;
// One backup at a time: a second caller waits rather than doubling the I/O.
std::mutex g_backup_mu;
}  // namespace

Status CheckBackupDir(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("dir: required (an absolute path on the node)");
  if (Status s = core::CheckText("dir", dir, kMaxDirBytes); !s.ok()) return s;
  if (dir.find_first_of("\n\t") != std::string::npos) {
    return Status::InvalidArgument("dir: must not contain tabs or newlines");
  }
  if (dir.front() != '/') {
    return Status::InvalidArgument("dir: want an absolute path, got " + core::Quote(dir));
  }
  // No "..": the path names what it says, resolved against nothing.
  for (size_t start = 0; start <= dir.size();) {
    size_t end = dir.find('/', start);
    if (end == std::string::npos) end = dir.size();
    if (dir.compare(start, end - start, "..") == 0) {
      return Status::InvalidArgument("dir: must not contain \"..\"");
    }
    start = end + 1;
  }
  return Status::Ok();
}

grpc::ServerUnaryReactor* AdminService::Backup(grpc::CallbackServerContext* context,
                                               const v1::BackupRequest* request,
                                               v1::BackupResponse* response) {
  Call call(context, &probe_, "Backup");
  auto caller = AdminFrom(auth_, *context);
  if (!caller.ok()) return call.Finish(caller.status());
  if (Status s = CheckBackupDir(request->dir()); !s.ok()) return call.Finish(s);
  auto started = std::chrono::steady_clock::now();
  std::lock_guard lock(g_backup_mu);
  auto info = node_.store().Backup(request->dir());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  if (!info.ok()) {
    Log(LogLevel::kWarn, "backup failed",
        {{"caller", caller->user()}, {"error", info.status().ToString()}});
    return call.Finish(info.status());
  }
  response->set_dir(info->dir);
  response->set_sequence(info->sequence);
  response->set_files(info->files);
  response->set_bytes(info->bytes);
  response->set_duration_ms(ms);
  Log(LogLevel::kInfo, "backup taken",
      {{"caller", caller->user()},
       {"dir", info->dir},
       {"files", std::to_string(info->files)},
       {"duration_ms", std::to_string(ms)}});
  return call.Finish(Status::Ok());
}

grpc::ServerUnaryReactor* AdminService::MoveClock(grpc::CallbackServerContext* context,
                                                  const char* method,
                                                  const std::function<StatusOr<int64_t>()>& move,
                                                  v1::ClockResponse* response) {
  Call call(context, &probe_, method);
  auto caller = AdminFrom(auth_, *context);
  if (!caller.ok()) return call.Finish(caller.status());
  if (test_clock_ == nullptr) {
    return call.Finish(Status::FailedPrecondition("node not started with --test-clock-start-ms"));
  }
  auto now = move();
  if (!now.ok()) return call.Finish(now.status());
  response->set_now_ms(*now);
  Log(LogLevel::kInfo, "test clock moved",
      {{"caller", caller->user()}, {"method", method}, {"now_ms", std::to_string(*now)}});
  return call.Finish(Status::Ok());
}

grpc::ServerUnaryReactor* AdminService::SetClock(grpc::CallbackServerContext* context,
                                                 const v1::SetClockRequest* request,
                                                 v1::ClockResponse* response) {
  const int64_t ms = request->now_ms();
  auto move = [this, ms] { return test_clock_->Set(ms, "now_ms"); };
  return MoveClock(context, "/whistle.v1.AdminService/SetClock", move, response);
}

grpc::ServerUnaryReactor* AdminService::AdvanceClock(grpc::CallbackServerContext* context,
                                                     const v1::AdvanceClockRequest* request,
                                                     v1::ClockResponse* response) {
  const int64_t delta = request->delta_ms();
  auto move = [this, delta] { return test_clock_->Advance(delta, "delta_ms"); };
  return MoveClock(context, "/whistle.v1.AdminService/AdvanceClock", move, response);
}

}  // namespace whistle::services
