#include "cli/watch_verbs.h"

#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "cli/args.h"
#include "whistle/v1/inbox.grpc.pb.h"
#include "whistle/v1/watch.grpc.pb.h"

namespace whistle::cli {

namespace {

void PrintChangeLine(const v1::Change& c) {
  if (c.has_case_change()) {
    const auto& k = c.case_change();
    std::printf("%-10s %-19s case      %-18s #%-3lld %-10s %-12s %s\n", c.token().c_str(),
                Time(c.at_ms()).c_str(), k.case_id().c_str(), static_cast<long long>(k.seq()),
                Short(v1::TransitionKind_Name(k.kind()), "TRANSITION_KIND_").c_str(),
                Short(v1::CaseState_Name(k.state()), "CASE_STATE_").c_str(), k.owner_id().c_str());
  } else if (c.has_directive_change()) {
    const auto& d = c.directive_change();
    if (d.has_delta()) {
      std::printf("%-10s %-19s directive %-18s %-28s total%+lld signed%+lld done%+lld\n",
                  c.token().c_str(), Time(c.at_ms()).c_str(), d.directive_id().c_str(),
                  d.jurisdiction_id().c_str(), static_cast<long long>(d.delta().total()),
                  static_cast<long long>(d.delta().signed_()),
                  static_cast<long long>(d.delta().done()));
    } else {
      std::printf("%-10s %-19s directive %-18s %-28s version %lld %s\n", c.token().c_str(),
                  Time(c.at_ms()).c_str(), d.directive_id().c_str(), d.jurisdiction_id().c_str(),
                  static_cast<long long>(d.version()),
                  Short(v1::DirectiveState_Name(d.state()), "DIRECTIVE_STATE_").c_str());
    }
  }
  std::fflush(stdout);
}

void PrintInbox(const v1::CaseInboxResponse& r, bool summoned) {
  if (summoned) {
    std::printf("%-18s %-8s %-19s %-12s %-26s %s\n", "CASE", "PENDING", "REPORT-IN BY", "STATE",
                "OWNER", "CATEGORY");
  } else {
    std::printf("%-18s %-12s %-26s %-24s %s\n", "CASE", "STATE", "OWNER", "CATEGORY", "UPDATED");
  }
  for (const auto& item : r.items()) {
    const v1::Case& c = item.case_();
    std::string state = Short(v1::CaseState_Name(c.state()), "CASE_STATE_");
    if (summoned) {
      std::printf("%-18s %-8s %-19s %-12s %-26s %s\n", c.id().c_str(),
                  item.pending() ? "yes" : "no", Time(item.report_in_by_ms()).c_str(),
                  state.c_str(), c.owner_id().c_str(), c.category().c_str());
    } else {
      std::printf("%-18s %-12s %-26s %-24s %s\n", c.id().c_str(), state.c_str(),
                  c.owner_id().c_str(), c.category().c_str(), Time(c.updated_at_ms()).c_str());
    }
  }
  if (!r.next_page_token().empty()) {
    std::printf("next page: --page-token %s\n", r.next_page_token().c_str());
  }
}

void PrintNotices(const v1::NoticeInboxResponse& r) {
  std::printf("%-18s %-19s %-7s %-16s %-12s %-26s %-10s %s\n", "CASE", "NOTICED", "NOTICES",
              "MISSED", "STATE", "OWNER", "SEVERITY", "CATEGORY");
  for (const auto& item : r.items()) {
    const v1::Case& c = item.case_();
    std::string missed;
    for (const auto& m : item.deadlines_missed()) missed += (missed.empty() ? "" : ",") + m;
    std::printf("%-18s %-19s %-7d %-16s %-12s %-26s %-10s %s\n", c.id().c_str(),
                Time(item.noticed_at_ms()).c_str(), item.notices(), missed.c_str(),
                Short(v1::CaseState_Name(c.state()), "CASE_STATE_").c_str(), c.owner_id().c_str(),
                Short(v1::Severity_Name(c.severity()), "SEVERITY_").c_str(), c.category().c_str());
  }
  if (r.items().empty()) std::printf("(no supervision notices)\n");
  if (!r.next_page_token().empty()) {
    std::printf("next page: --page-token %s\n", r.next_page_token().c_str());
  }
}

}  // namespace

int NoticesVerb(const VerbIo& io, Args args) {
  v1::NoticeInboxRequest req;
  int64_t page_size = 0;
  std::string why;
  if (!TakeNumber(args, "--page-size", 50, 1, kMaxPageSize, &page_size, &why)) {
    return io.usage(why);
  }
  req.set_page_size(static_cast<int32_t>(page_size));
  req.set_page_token(Take(args, "--page-token"));
  const bool all = TakeFlag(args, "--all");
  if (!args.empty() && !args[0].empty() && args[0][0] != '-') {
    req.set_jurisdiction_id(args[0]);
    args.erase(args.begin());
  }
  if (why = Leftover("notices", args); !why.empty()) return io.usage(why);
  auto stub = v1::InboxService::NewStub(io.channel);
  v1::NoticeInboxResponse total;
  for (;;) {
    grpc::ClientContext ctx;
    io.prepare(ctx);
    v1::NoticeInboxResponse page;
    grpc::Status status = stub->SupervisionNotices(&ctx, req, &page);
    if (!status.ok() || !all) return io.print(status, page, [&] { PrintNotices(page); });
    for (auto& item : *page.mutable_items()) *total.add_items() = std::move(item);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  return io.print(grpc::Status::OK, total, [&] { PrintNotices(total); });
}

int WatchVerb(const VerbIo& io, bool json, Args args) {
  v1::WatchRequest req;
  req.set_jurisdiction_id(Take(args, "--jurisdiction-id"));
  req.set_from_token(Take(args, "--from"));
  int64_t max = 0, for_ms = 0;
  std::string why;
  if (!TakeNumber(args, "--max", 0, 0, 1000000000, &max, &why) ||
      !TakeNumber(args, "--for-ms", 0, 0, 86400000, &for_ms, &why)) {
    return io.usage(why);
  }
  if (why = Leftover("watch", args); !why.empty()) return io.usage(why);
  auto stub = v1::WatchService::NewStub(io.channel);
  grpc::ClientContext ctx;
  io.prepare(ctx);
  // A watch runs until stopped: no per-call deadline unless --for-ms.
  if (for_ms > 0) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(for_ms));
  } else {
    ctx.set_deadline(std::chrono::system_clock::time_point::max());
  }
  auto reader = stub->Watch(&ctx, req);
  if (!json) {
    std::printf("%-10s %-19s %-9s %-18s %s\n", "TOKEN", TimeHeader().c_str(), "WHAT", "ID",
                "CHANGE");
    std::fflush(stdout);
  }
  v1::Change change;
  std::string last = req.from_token();
  int64_t seen = 0;
  while (reader->Read(&change)) {
    last = change.token();
    if (json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(change, &out, options);
      std::printf("%s\n", out.c_str());
      std::fflush(stdout);
    } else {
      PrintChangeLine(change);
    }
    if (max > 0 && ++seen >= max) {
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if ((max > 0 && seen >= max) ||
      (for_ms > 0 && status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
    return 0;
  }
  // Worth resuming: the node went away, or this consumer fell behind.
  if (!last.empty() && (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                        status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)) {
    std::fprintf(stderr, "resume with: whistlectl watch --from %s\n", last.c_str());
  }
  // The token expired or its key was withdrawn mid-stream: resume with a new one.
  if (!last.empty() && status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    std::fprintf(stderr, "resume with a new token: whistlectl watch --from %s\n", last.c_str());
  }
  return io.print(status, v1::Change(), [] {});
}

int InboxVerb(const VerbIo& io, Args args) {
  if (args.empty()) return io.usage("inbox: want summoned or reported (whistlectl inbox --help)");
  const std::string which = args[0];
  args.erase(args.begin());
  if (which != "summoned" && which != "reported") {
    return io.usage("unknown verb \"inbox " + which + "\"");
  }
  v1::CaseInboxRequest req;
  int64_t page_size = 0;
  std::string why;
  if (!TakeNumber(args, "--page-size", 50, 1, kMaxPageSize, &page_size, &why)) {
    return io.usage(why);
  }
  req.set_page_size(static_cast<int32_t>(page_size));
  req.set_page_token(Take(args, "--page-token"));
  const bool all = TakeFlag(args, "--all");
  if (why = Leftover("inbox " + which, args); !why.empty()) return io.usage(why);
  auto stub = v1::InboxService::NewStub(io.channel);
  const bool summoned = which == "summoned";
  v1::CaseInboxResponse total;
  for (;;) {
    grpc::ClientContext ctx;
    io.prepare(ctx);
    v1::CaseInboxResponse page;
    grpc::Status status =
        summoned ? stub->DepartmentCases(&ctx, req, &page) : stub->ReportedCases(&ctx, req, &page);
    if (!status.ok() || !all) {
      return io.print(status, page, [&] { PrintInbox(page, summoned); });
    }
    for (auto& item : *page.mutable_items()) *total.add_items() = std::move(item);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  return io.print(grpc::Status::OK, total, [&] { PrintInbox(total, summoned); });
}

}  // namespace whistle::cli
