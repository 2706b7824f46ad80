#include "cli/clock_verbs.h"

#include <cstdio>
#include <limits>
#include <utility>

#include "cli/args.h"
#include "whistle/v1/admin.grpc.pb.h"

namespace whistle::cli {

namespace {

constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max();

// One unit per suffix; "ms" is tried before "s" and "m".
constexpr std::pair<const char*, int64_t> kUnits[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24 * 3600 * 1000}};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int PrintClock(const VerbIo& io, const grpc::Status& status, const v1::ClockResponse& resp) {
  return io.print(status, resp, [&] {
    std::printf("test clock now %lld (%s)\n", static_cast<long long>(resp.now_ms()),
                Time(resp.now_ms()).c_str());
  });
}

int Set(const VerbIo& io, Args args) {
  if (args.empty()) return io.usage("clock set: MS missing (ms since the epoch)");
  v1::SetClockRequest req;
  int64_t ms = 0;
  std::string why;
  if (!ParseNumber("MS", args[0], 0, kMaxMs, &ms, &why)) return io.usage("clock set: " + why);
  args.erase(args.begin());
  if (why = Leftover("clock set", args); !why.empty()) return io.usage(why);
  req.set_now_ms(ms);
  grpc::ClientContext ctx;
  io.prepare(ctx);
  v1::ClockResponse resp;
  auto status = v1::AdminService::NewStub(io.channel)->SetClock(&ctx, req, &resp);
  return PrintClock(io, status, resp);
}

int Advance(const VerbIo& io, Args args) {
  if (args.empty()) return io.usage("clock advance: DURATION missing (e.g. 90s, 3h, 2d)");
  v1::AdvanceClockRequest req;
  int64_t ms = 0;
  std::string why;
  if (!ParseDuration("DURATION", args[0], &ms, &why)) return io.usage("clock advance: " + why);
  args.erase(args.begin());
  if (why = Leftover("clock advance", args); !why.empty()) return io.usage(why);
  req.set_delta_ms(ms);
  grpc::ClientContext ctx;
  io.prepare(ctx);
  v1::ClockResponse resp;
  auto status = v1::AdminService::NewStub(io.channel)->AdvanceClock(&ctx, req, &resp);
  return PrintClock(io, status, resp);
}

}  // namespace

bool ParseDuration(const std::string& what, const std::string& text, int64_t* ms,
                   std::string* why) {
  for (const auto& [suffix, unit] : kUnits) {
    if (!EndsWith(text, suffix)) continue;
    const std::string digits = text.substr(0, text.size() - std::char_traits<char>::length(suffix));
    int64_t n = 0;
    std::string ignored;
    if (!ParseNumber(what, digits, 0, kMaxMs / unit, &n, &ignored)) break;
    *ms = n * unit;
    return true;
  }
  *why = what + ": want a whole number and a unit (ms, s, m, h or d), e.g. 90s, 3h, 2d; got \"" +
         text.substr(0, 64) + "\"";
  return false;
}

int ClockVerb(const VerbIo& io, std::vector<std::string> args) {
  if (args.empty()) return io.usage("clock: want set MS or advance DURATION");
  const std::string verb = args[0];
  args.erase(args.begin());
  if (verb == "set") return Set(io, std::move(args));
  if (verb == "advance") return Advance(io, std::move(args));
  return io.usage("unknown verb \"clock " + verb.substr(0, 64) + "\"");
}

}  // namespace whistle::cli
