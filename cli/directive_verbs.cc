#include "cli/directive_verbs.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>

#include "cli/args.h"
#include "whistle/v1/directive_service.grpc.pb.h"

namespace whistle::cli {

namespace {

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string Lower(std::string s, const std::string& prefix) {
  if (s.rfind(prefix, 0) == 0) s = s.substr(prefix.size());
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Bounds of a deadline: ten years ahead; unix ms before the year 10000.
constexpr int64_t kMaxAheadMs = int64_t{10} * 366 * 24 * 3600 * 1000;
constexpr int64_t kLastUnixMs = int64_t{253402300799999};

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// "+30m", "+2h", "+3d", "2026-12-01T18:00[:SS]" (local time) or unix ms; 0 when malformed.
int64_t ParseDeadline(const std::string& text) {
  if (text.empty()) return 0;
  std::string why;
  int64_t n = 0;
  if (text[0] == '+' && text.size() > 2) {
    static const std::map<char, int64_t> kUnit = {
        {'s', 1000}, {'m', 60 * 1000}, {'h', 3600 * 1000}, {'d', 24 * 3600 * 1000}};
    auto unit = kUnit.find(text.back());
    // At most ten years ahead, whatever the unit.
    if (unit == kUnit.end() || !ParseNumber("--deadline", text.substr(1, text.size() - 2), 1,
                                            kMaxAheadMs / unit->second, &n, &why)) {
      return 0;
    }
    return NowMs() + n * unit->second;
  }
  if (text.find('-') != std::string::npos) {
    std::tm tm{};
    const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M", &tm);
    if (rest == nullptr) return 0;
    if (*rest == ':') rest = strptime(rest, ":%S", &tm);
    if (rest == nullptr || *rest != '\0') return 0;
    tm.tm_isdst = -1;
    return static_cast<int64_t>(std::mktime(&tm)) * 1000;
  }
  return ParseNumber("--deadline", text, 1, kLastUnixMs, &n, &why) ? n : 0;
}

bool ParseLevel(const std::string& name, v1::Level* out) {
  std::string upper = "LEVEL_" + name;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return v1::Level_Parse(upper, out) && *out != v1::LEVEL_UNSPECIFIED;
}

std::string Percent(int64_t part, int64_t whole) {
  if (whole <= 0) return "-";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * static_cast<double>(part) / whole);
  return buf;
}

std::string Targets(const v1::Targets& t) {
  if (t.has_level()) {
    return "every " + Lower(v1::Level_Name(t.level().level()), "LEVEL_") + " of " +
           t.level().subtree_id();
  }
  const auto& ids = t.has_jurisdictions() ? t.jurisdictions().ids() : t.departments().ids();
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

void PrintDirective(const v1::Directive& d) {
  std::printf("directive   %s\n", d.id().c_str());
  std::printf("title       %s\n", d.draft().title().c_str());
  if (!d.draft().text().empty()) std::printf("text        %s\n", d.draft().text().c_str());
  std::printf("state       %s (version %lld)%s%s\n",
              Lower(v1::DirectiveState_Name(d.state()), "DIRECTIVE_STATE_").c_str(),
              static_cast<long long>(d.version()), d.cancel_reason().empty() ? "" : ": ",
              d.cancel_reason().c_str());
  std::printf("issuer      %s at %s, %s\n", d.issuer_user().c_str(),
              d.issuer_jurisdiction_id().c_str(), Time(d.issued_at_unix_ms()).c_str());
  std::printf("deadline    %s\n", Time(d.draft().deadline_unix_ms()).c_str());
  std::printf("targets     %s\n", Targets(d.draft().targets()).c_str());
  for (const auto& a : d.draft().attachments()) std::printf("attachment  %s\n", a.uri().c_str());
}

void RowHeader() {
  std::printf("%-22s %-22s %-10s %7s %7s %7s %7s %7s\n", "JURISDICTION", "NAME", "LEVEL", "TOTAL",
              "SIGNED", "DONE", "OVERDUE", "DONE%");
}

void PrintRow(const v1::ProgressRow& r, const std::string& indent) {
  const auto& c = r.counts();
  std::printf("%-22s %-22s %-10s %7lld %7lld %7lld %7lld %7s\n",
              (indent + r.jurisdiction_id()).c_str(), r.name().c_str(),
              r.level() == v1::LEVEL_UNSPECIFIED
                  ? "department"
                  : Lower(v1::Level_Name(r.level()), "LEVEL_").c_str(),
              static_cast<long long>(c.total()), static_cast<long long>(c.signed_()),
              static_cast<long long>(c.done()), static_cast<long long>(r.overdue()),
              Percent(c.done(), c.total()).c_str());
}

void PrintView(const v1::DirectiveView& v) {
  PrintDirective(v.directive());
  RowHeader();
  PrintRow(v.progress(), "");
}

void PrintIssued(const v1::IssueDirectiveResponse& r) {
  PrintDirective(r.directive());
  std::printf("receipts    %lld (one per target unit, written on the node hosting it)\n",
              static_cast<long long>(r.targets()));
}

void PrintReceipt(const v1::ReceiptView& v) {
  const auto& r = v.receipt();
  std::printf("directive   %s (version %lld, %s)\n", v.directive().id().c_str(),
              static_cast<long long>(v.directive().version()),
              Lower(v1::DirectiveState_Name(v.directive().state()), "DIRECTIVE_STATE_").c_str());
  std::printf("unit        %s\n", r.unit_id().c_str());
  std::printf("receipt     %s\n",
              Lower(v1::ReceiptState_Name(r.state()), "RECEIPT_STATE_").c_str());
  std::printf("signed      %s %s%s\n", Time(r.signed_at_unix_ms()).c_str(), r.signed_by().c_str(),
              r.signed_late() ? " LATE" : "");
  std::printf("done        %s %s%s\n", Time(r.done_at_unix_ms()).c_str(), r.done_by().c_str(),
              r.done_late() ? " LATE" : "");
  if (!r.note().empty()) std::printf("note        %s\n", r.note().c_str());
}

// A page token as one shell word: a token that spans nodes ("1|0|...") is
// quoted, so the printed flag can be pasted back as it is.
std::string ShellWord(const std::string& token) {
  const bool plain = std::all_of(token.begin(), token.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  if (plain) return token;
  std::string out = "'";
  for (char c : token) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void PrintList(const v1::ListDirectivesResponse& list) {
  std::printf("%-20s %-9s %3s %-16s %-19s %13s %s\n", "DIRECTIVE", "STATE", "VER", "ISSUER",
              "DEADLINE", "DONE/TOTAL", "TITLE");
  for (const auto& v : list.directives()) {
    const auto& d = v.directive();
    std::string ratio = std::to_string(v.progress().counts().done()) + "/" +
                        std::to_string(v.progress().counts().total());
    std::printf("%-20s %-9s %3lld %-16s %-19s %13s %s\n", d.id().c_str(),
                Lower(v1::DirectiveState_Name(d.state()), "DIRECTIVE_STATE_").c_str(),
                static_cast<long long>(d.version()), d.issuer_jurisdiction_id().c_str(),
                Time(d.draft().deadline_unix_ms()).c_str(), ratio.c_str(),
                d.draft().title().c_str());
  }
  if (!list.next_page_token().empty()) {
    std::printf("next page: --page-token %s\n", ShellWord(list.next_page_token()).c_str());
  }
}

void PrintProgress(const v1::GetProgressResponse& p) {
  const auto& d = p.directive();
  std::printf("%s  %s  (version %lld, %s, deadline %s, as of %s)\n", d.id().c_str(),
              d.draft().title().c_str(), static_cast<long long>(d.version()),
              Lower(v1::DirectiveState_Name(d.state()), "DIRECTIVE_STATE_").c_str(),
              Time(d.draft().deadline_unix_ms()).c_str(), Time(p.as_of_unix_ms()).c_str());
  RowHeader();
  PrintRow(p.total(), "");
  for (const auto& row : p.children()) PrintRow(row, "  ");
  if (p.count_updates_received() > 0) {
    std::printf("count updates received from child nodes: %lld\n",
                static_cast<long long>(p.count_updates_received()));
  }
}

void PrintTargets(const v1::ListTargetsResponse& t) {
  std::printf("directive version %lld\n", static_cast<long long>(t.directive_version()));
  std::printf("%-22s %-8s %-19s %-5s %-19s %-5s %-20s %s\n", "UNIT", "STATE", "SIGNED", "LATE",
              "DONE", "LATE", "BY", "NOTE");
  for (const auto& r : t.receipts()) {
    std::printf("%-22s %-8s %-19s %-5s %-19s %-5s %-20s %s\n", r.unit_id().c_str(),
                Lower(v1::ReceiptState_Name(r.state()), "RECEIPT_STATE_").c_str(),
                Time(r.signed_at_unix_ms()).c_str(), r.signed_late() ? "yes" : "",
                Time(r.done_at_unix_ms()).c_str(), r.done_late() ? "yes" : "",
                (r.done_by().empty() ? r.signed_by() : r.done_by()).c_str(), r.note().c_str());
  }
  if (!t.next_page_token().empty()) {
    std::printf("next page: --page-token %s\n", ShellWord(t.next_page_token()).c_str());
  }
}

void PrintInbox(const v1::InboxResponse& inbox) {
  std::printf("%-20s %3s %-9s %-8s %-19s %s\n", "DIRECTIVE", "VER", "STATE", "RECEIPT", "DEADLINE",
              "TITLE");
  for (const auto& item : inbox.items()) {
    const auto& d = item.directive();
    std::printf("%-20s %3lld %-9s %-8s %-19s %s\n", d.id().c_str(),
                static_cast<long long>(d.version()),
                Lower(v1::DirectiveState_Name(d.state()), "DIRECTIVE_STATE_").c_str(),
                Lower(v1::ReceiptState_Name(item.receipt().state()), "RECEIPT_STATE_").c_str(),
                Time(d.draft().deadline_unix_ms()).c_str(), d.draft().title().c_str());
  }
  if (!inbox.next_page_token().empty()) {
    std::printf("next page: --page-token %s\n", inbox.next_page_token().c_str());
  }
}

// Runs one unary call: prepare, call, print.
template <class Resp, class Call, class Printer>
int Run(const VerbIo& io, Call call, Printer table) {
  grpc::ClientContext ctx;
  io.prepare(ctx);
  Resp resp;
  grpc::Status status = call(&ctx, &resp);
  return io.print(status, resp, [&] { table(resp); });
}

std::string TakeId(Args& args) {
  if (args.empty() || args[0].rfind("--", 0) == 0) return "";
  std::string id = args[0];
  args.erase(args.begin());
  return id;
}

}  // namespace

int DirectiveVerb(const VerbIo& io, Args args) {
  if (args.empty()) return io.usage("directive: want a verb (whistlectl directive --help)");
  auto stub = v1::DirectiveService::NewStub(io.channel);
  const std::string verb = args[0];
  args.erase(args.begin());
  auto extra = [&]() -> int { return io.usage(Leftover("directive " + verb, args)); };
  // --page-size N of the paged verbs: 1..kMaxPageSize, default 50.
  std::string why;
  int64_t page_size = 0;
  auto take_page_size = [&]() {
    return TakeNumber(args, "--page-size", 50, 1, kMaxPageSize, &page_size, &why);
  };

  if (verb == "issue") {
    v1::IssueDirectiveRequest req;
    req.set_request_id(Take(args, "--request-id"));
    auto* d = req.mutable_draft();
    d->set_title(Take(args, "--title"));
    d->set_text(Take(args, "--text"));
    const std::string deadline = Take(args, "--deadline");
    d->set_deadline_unix_ms(ParseDeadline(deadline));
    if (d->deadline_unix_ms() == 0) {
      return io.usage("--deadline: want +30m, +2h, +3d, 2026-12-01T18:00 or unix ms, got \"" +
                      deadline + "\"");
    }
    for (const auto& uri : TakeAll(args, "--attachment")) d->add_attachments()->set_uri(uri);
    const std::string level = Take(args, "--level"), subtree = Take(args, "--subtree");
    const std::string jurisdictions = Take(args, "--jurisdictions");
    const std::string departments = Take(args, "--departments");
    if (!level.empty() || !subtree.empty()) {
      v1::Level parsed;
      if (!ParseLevel(level, &parsed)) {
        return io.usage("--level: want county, township, community or grid");
      }
      d->mutable_targets()->mutable_level()->set_level(parsed);
      d->mutable_targets()->mutable_level()->set_subtree_id(subtree);
    } else if (!jurisdictions.empty()) {
      for (const auto& id : Split(jurisdictions)) {
        d->mutable_targets()->mutable_jurisdictions()->add_ids(id);
      }
    } else if (!departments.empty()) {
      for (const auto& id : Split(departments)) {
        d->mutable_targets()->mutable_departments()->add_ids(id);
      }
    } else {
      return io.usage(
          "directive issue: targets missing (--level and --subtree, "
          "--jurisdictions or --departments)");
    }
    if (!args.empty()) return extra();
    return Run<v1::IssueDirectiveResponse>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->Issue(c, req, r); }, PrintIssued);
  }
  if (verb == "list") {
    v1::ListDirectivesRequest req;
    req.set_jurisdiction_id(Take(args, "--jurisdiction-id"));
    if (!take_page_size()) return io.usage(why);
    req.set_page_size(static_cast<int32_t>(page_size));
    req.set_page_token(Take(args, "--page-token"));
    if (!args.empty()) return extra();
    return Run<v1::ListDirectivesResponse>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->List(c, req, r); }, PrintList);
  }
  if (verb == "inbox") {
    v1::InboxRequest req;
    req.set_unit_id(Take(args, "--unit"));
    if (!take_page_size()) return io.usage(why);
    req.set_page_size(static_cast<int32_t>(page_size));
    req.set_page_token(Take(args, "--page-token"));
    if (!args.empty()) return extra();
    return Run<v1::InboxResponse>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->Inbox(c, req, r); }, PrintInbox);
  }

  const std::string id = TakeId(args);
  if (id.empty()) return io.usage("directive " + verb + ": directive ID missing");
  if (verb == "amend") {
    v1::AmendDirectiveRequest req;
    req.set_directive_id(id);
    const std::string deadline = Take(args, "--deadline");
    if (Given("--deadline")) {  // `--deadline ""` is an error, not "unchanged"
      req.mutable_amend()->set_deadline_unix_ms(ParseDeadline(deadline));
      if (req.amend().deadline_unix_ms() == 0) {
        return io.usage("--deadline: want +30m, +2h, +3d, 2026-12-01T18:00 or unix ms");
      }
    }
    req.mutable_amend()->set_text(Take(args, "--text"));
    if (!args.empty()) return extra();
    return Run<v1::Directive>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->Amend(c, req, r); },
        PrintDirective);
  }
  if (verb == "cancel") {
    v1::CancelDirectiveRequest req;
    req.set_directive_id(id);
    req.mutable_cancel()->set_reason(Take(args, "--reason"));
    if (!args.empty()) return extra();
    return Run<v1::Directive>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->Cancel(c, req, r); },
        PrintDirective);
  }
  if (verb == "sign") {
    v1::SignDirectiveRequest req;
    req.set_directive_id(id);
    req.set_unit_id(Take(args, "--unit"));
    req.mutable_sign()->set_note(Take(args, "--note"));
    if (!args.empty()) return extra();
    return Run<v1::ReceiptView>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->Sign(c, req, r); }, PrintReceipt);
  }
  if (verb == "complete") {
    v1::CompleteDirectiveRequest req;
    req.set_directive_id(id);
    req.set_unit_id(Take(args, "--unit"));
    req.mutable_complete()->set_note(Take(args, "--note"));
    for (const auto& uri : TakeAll(args, "--attachment")) {
      req.mutable_complete()->add_attachments()->set_uri(uri);
    }
    if (!args.empty()) return extra();
    return Run<v1::ReceiptView>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->Complete(c, req, r); },
        PrintReceipt);
  }
  if (verb == "get") {
    v1::GetDirectiveRequest req;
    req.set_directive_id(id);
    if (!args.empty()) return extra();
    return Run<v1::DirectiveView>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->Get(c, req, r); }, PrintView);
  }
  if (verb == "progress") {
    v1::GetProgressRequest req;
    req.set_directive_id(id);
    req.set_jurisdiction_id(Take(args, "--jurisdiction-id"));
    if (!args.empty()) return extra();
    return Run<v1::GetProgressResponse>(
        io, [&](grpc::ClientContext* c, auto* r) { return stub->Progress(c, req, r); },
        PrintProgress);
  }
  if (verb == "targets") {
    v1::ListTargetsRequest req;
    req.set_directive_id(id);
    req.set_jurisdiction_id(Take(args, "--jurisdiction-id"));
    const std::string state = Take(args, "--state");
    if (Given("--state")) {  // `--state ""` is an error, not every state
      std::string name = "RECEIPT_STATE_" + state;
      for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      v1::ReceiptState parsed;
      if (!v1::ReceiptState_Parse(name, &parsed)) {
        return io.usage("--state: want pending, signed or done");
      }
      req.set_state(parsed);
    }
    if (!take_page_size()) return io.usage(why);
    req.set_page_size(static_cast<int32_t>(page_size));
    req.set_page_token(Take(args, "--page-token"));
    const bool all = TakeFlag(args, "--all");
    if (!args.empty()) return extra();
    if (!all) {
      return Run<v1::ListTargetsResponse>(
          io, [&](grpc::ClientContext* c, auto* r) { return stub->ListTargets(c, req, r); },
          PrintTargets);
    }
    v1::ListTargetsResponse total;
    for (;;) {
      grpc::ClientContext ctx;
      io.prepare(ctx);
      v1::ListTargetsResponse page;
      grpc::Status status = stub->ListTargets(&ctx, req, &page);
      if (!status.ok()) return io.print(status, page, [] {});
      total.set_directive_version(page.directive_version());
      for (auto& r : *page.mutable_receipts()) *total.add_receipts() = std::move(r);
      if (page.next_page_token().empty()) break;
      req.set_page_token(page.next_page_token());
    }
    return io.print(grpc::Status::OK, total, [&] { PrintTargets(total); });
  }
  return io.usage("unknown verb \"directive " + verb + "\"");
}

}  // namespace whistle::cli
