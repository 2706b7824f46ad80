// RpcLog: one JSON line per failed call (never for a successful one at info),
// a caller's mistake at info and a server fault at warn, input quoted short,
// and at most kMaxFailureLinesPerSecond lines a second with the rest counted.
#include "services/rpc_log.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"

namespace whistle::services {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(RpcLogTest, FailedCallsGetOneLineSuccessfulOnesOnlyAtDebug) {
  SetLogLevel(LogLevel::kInfo);
  const auto started = std::chrono::steady_clock::now();
  grpc::Status ok = grpc::Status::OK;
  grpc::Status not_found(grpc::StatusCode::NOT_FOUND, "case szs-9 not found");
  grpc::Status internal(grpc::StatusCode::INTERNAL, std::string(1000, 'm'));
  const std::string long_id(500, 'z');
  ::testing::internal::CaptureStderr();
  LogRpc({"/whistle.v1.CaseService/Get", &ok, "ann", "szs-1", started});
  LogRpc({"/whistle.v1.CaseService/Get", &not_found, "ann", "szs-9", started});
  LogRpc({"/whistle.v1.CaseService/Act", &internal, "bob", long_id, started});
  auto lines = Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"level\":\"info\",\"msg\":\"rpc failed\""), std::string::npos);
  EXPECT_NE(lines[0].find("\"code\":\"NOT_FOUND\""), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("szs-9"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("\"level\":\"warn\""), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("\"code\":\"INTERNAL\""), std::string::npos) << lines[1];
  EXPECT_LT(lines[1].size(), 600u) << "unbounded input or message in the log line";
  EXPECT_EQ(lines[1].find(long_id), std::string::npos);

  SetLogLevel(LogLevel::kDebug);
  ::testing::internal::CaptureStderr();
  LogRpc({"/whistle.v1.CaseService/Get", &ok, "ann", "szs-1", started});
  lines = Lines(::testing::internal::GetCapturedStderr());
  SetLogLevel(LogLevel::kInfo);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(
      lines[0].find("\"msg\":\"rpc\",\"method\":\"/whistle.v1.CaseService/Get\",\"code\":\"OK\""),
      std::string::npos)
      << lines[0];
}

TEST(RpcLogTest, FailureLinesAreCappedAndTheRestCounted) {
  SetLogLevel(LogLevel::kInfo);
  grpc::Status denied(grpc::StatusCode::PERMISSION_DENIED, "no");
  const auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a fresh window
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 3 * kMaxFailureLinesPerSecond; ++i) {
    LogRpc({"/whistle.v1.CaseService/Get", &denied, "ann", "", started});
  }
  auto lines = Lines(::testing::internal::GetCapturedStderr());
  EXPECT_LE(lines.size(), static_cast<size_t>(2 * kMaxFailureLinesPerSecond));
  EXPECT_GE(lines.size(), static_cast<size_t>(kMaxFailureLinesPerSecond));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ::testing::internal::CaptureStderr();
  LogRpc({"/whistle.v1.CaseService/Get", &denied, "ann", "", started});
  lines = Lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find("\"failures_not_logged\":\"0\""), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace whistle::services
