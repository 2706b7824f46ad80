#include "services/watch_service.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <charconv>
#include <chrono>
#include <deque>
#include <optional>

#include "core/directive.h"
#include "core/text.h"
#include "services/access.h"
#include "services/call.h"
#include "services/identity.h"

namespace whistle::services {

namespace {
constexpr char kMethod[] = "/whistle.v1.WatchService/Watch";
constexpr size_t kMaxTokenLength = 20;
}  // namespace

// Open streams and changes sent; no labels (a stream's subtree is unbounded).
struct WatchService::Probe {
  explicit Probe(prometheus::Registry& registry)
      : streams(prometheus::BuildGauge()
                    .Name("whistle_watch_streams")
                    .Help("Live watch streams open on this node (WatchService.Watch).")
                    .Register(registry)
                    .Add({})),
        sent(prometheus::BuildCounter()
                 .Name("whistle_watch_changes_sent_total")
                 .Help("Changes written to live watch streams, summed over streams.")
                 .Register(registry)
                 .Add({})) {}
  prometheus::Gauge& streams;
  prometheus::Counter& sent;
};

std::string ChangeToken(uint64_t seq) { return std::to_string(seq); }

StatusOr<uint64_t> ParseChangeToken(const std::string& token) {
  uint64_t seq = 0;
  auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), seq);
  if (token.empty() || token.size() > kMaxTokenLength || ec != std::errc() ||
      p != token.data() + token.size()) {
    return Status::InvalidArgument("from_token: not a token this server issued (decimal number)");
  }
  return seq;
}

class WatchService::Stream final : public grpc::ServerWriteReactor<v1::Change> {
 public:
  Stream(WatchService* service, grpc::CallbackServerContext* context, std::string root,
         uint64_t after)
      : service_(service),
        context_(context),
        root_(std::move(root)),
        pos_(after),
        head_(after),
        started_(std::chrono::steady_clock::now()) {}

  // Reads the next chunk if nothing is being written, and writes its first
  // matching entry. Safe from any thread.
  void Pump() {
    std::lock_guard lock(mu_);
    PumpLocked();
  }

  void Notify(uint64_t seq) {
    std::lock_guard lock(mu_);
    if (seq > head_) head_ = seq;
    if (finished_) return;
    // Lag counts from what the client has: the chunk in memory is not delivered.
    const uint64_t delivered = pos_ - std::min<uint64_t>(pos_, buffer_.size());
    if (tailing_ && head_ > delivered && head_ - delivered > service_->options_.max_lag) {
      FinishLocked(Status(Code::kResourceExhausted, "watch: the consumer fell " +
                                                        std::to_string(head_ - delivered) +
                                                        " changes behind (limit " +
                                                        std::to_string(service_->options_.max_lag) +
                                                        "); resume with the last token received"));
      return;
    }
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (deferred_) {  // an end decided while this write was in flight
      Status status = std::move(*deferred_);
      deferred_.reset();
      SendFinish(status);
      return;
    }
    if (!ok) {
      FinishLocked(Status(Code::kCancelled, "watch: the client went away"));
      return;
    }
    if (!buffer_.empty()) buffer_.pop_front();
    if (service_->metrics_) service_->metrics_->sent.Increment();
    PumpLocked();
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    FinishLocked(Status(Code::kCancelled, "watch: cancelled by the client"));
  }

  void OnDone() override {
    service_->Remove(this);
    delete this;
  }

 private:
  bool Matches(const v1::Change& c) const {
    const core::Topology& topology = service_->node_.topology();
    for (const auto& j : c.jurisdiction_ids()) {
      if (topology.IsWithin(j, root_)) return true;
    }
    // A directive issued, amended or cancelled above: seen where it is addressed.
    const v1::DirectiveChange& d = c.directive_change();
    for (const auto& s : d.target_subtrees()) {
      if (topology.IsWithin(s, root_) || topology.IsWithin(root_, s)) return true;
    }
    for (const auto& u : d.target_units()) {
      if (topology.IsWithin(core::UnitJurisdiction(u, topology), root_)) return true;
    }
    return false;
  }

  void PumpLocked() {
    if (finished_ || writing_ || !StillAllowedLocked()) return;
    while (buffer_.empty()) {
      auto read = service_->node_.store().ReadChanges(pos_, service_->options_.chunk);
      if (!read.ok()) {
        FinishLocked(read.status());
        return;
      }
      if (read->empty()) {
        tailing_ = true;  // caught up: wait for the store's listener
        return;
      }
      for (auto& e : *read) {
        pos_ = e.seq;
        if (!Matches(e.change)) continue;
        e.change.set_token(ChangeToken(e.seq));
        buffer_.push_back(std::move(e.change));
      }
    }
    writing_ = true;
    StartWrite(&buffer_.front());
  }

  // The caller is checked again (at most once a second) before anything more
  // is sent: a token that expired, or whose key was removed by a JWKS reload,
  // ends the stream (UNAUTHENTICATED); the client resumes from its last token
  // with a new one.
  bool StillAllowedLocked() {
    const auto now = std::chrono::steady_clock::now();
    if (now < recheck_at_) return true;
    recheck_at_ = now + std::chrono::seconds(1);
    auto caller = CallerFrom(service_->auth_, *context_, service_->node_.context());
    Status s = caller.ok() ? CheckCanReadSubtree(caller->get(), root_, service_->node_.topology())
                           : caller.status();
    if (s.ok()) return true;
    FinishLocked(s);
    return false;
  }

  // Ends the stream once no write is in flight (Finish never overlaps a write).
  void FinishLocked(const Status& status) {
    if (finished_) return;
    finished_ = true;
    if (writing_) {
      deferred_ = status;
      return;
    }
    SendFinish(status);
  }

  void SendFinish(const Status& status) {
    grpc::Status out = ToGrpc(status);
    service_->probe_.Observe(kMethod, out.error_code(), started_);
    Finish(out);
  }

  WatchService* const service_;
  grpc::CallbackServerContext* const context_;  // valid until OnDone
  const std::string root_;
  std::mutex mu_;
  uint64_t pos_;                   // last change-log seq read (guarded by mu_)
  uint64_t head_;                  // last seq the store reported durable (guarded by mu_)
  std::deque<v1::Change> buffer_;  // read, matching, not yet written (guarded by mu_)
  bool writing_ = false;
  bool tailing_ = false;
  bool finished_ = false;
  std::optional<Status> deferred_;  // FinishLocked while writing (guarded by mu_)
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point recheck_at_ = started_ + std::chrono::seconds(1);
};

WatchService::WatchService(actors::Node& node, RpcProbe& probe, const Authenticator& auth,
                           RateLimiter* limiter, prometheus::Registry* registry,
                           WatchOptions options)
    : node_(node), probe_(probe), auth_(auth), limiter_(limiter), options_(options) {
  if (registry != nullptr) metrics_ = std::make_unique<Probe>(*registry);
}

WatchService::~WatchService() = default;

grpc::ServerWriteReactor<v1::Change>* WatchService::Watch(grpc::CallbackServerContext* context,
                                                          const v1::WatchRequest* request) {
  auto refuse = [&](const Status& status) {
    class Refused final : public grpc::ServerWriteReactor<v1::Change> {
     public:
      explicit Refused(const grpc::Status& s) { Finish(s); }
      void OnDone() override { delete this; }
    };
    grpc::Status out = ToGrpc(status);
    probe_.Observe(kMethod, out.error_code(), std::chrono::steady_clock::now());
    return new Refused(out);
  };
  auto caller = CallerFrom(auth_, *context, node_.context());
  if (!caller.ok()) return refuse(caller.status());
  const v1::Caller& who = caller->get();
  if (limiter_ != nullptr) {
    if (Status s = limiter_->Admit(who.user()); !s.ok()) return refuse(s);
  }
  if (who.role() == v1::ROLE_DEPARTMENT) {
    return refuse(Status::PermissionDenied(
        "jurisdiction_id: a department has no subtree to watch; it lists its cases through "
        "InboxService.DepartmentCases"));
  }
  std::string root =
      request->jurisdiction_id().empty() ? who.jurisdiction_id() : request->jurisdiction_id();
  if (Status s = core::CheckId("jurisdiction_id", root, 128); !s.ok()) return refuse(s);
  if (Status s = CheckCanReadSubtree(who, root, node_.topology()); !s.ok()) return refuse(s);

  storage::Store& store = node_.store();
  uint64_t after = 0;
  if (request->from_token().empty()) {
    after = store.LastChangeSeq();
  } else {
    auto seq = ParseChangeToken(request->from_token());
    if (!seq.ok()) return refuse(seq.status());
    after = *seq;
    // Checked here so a stale token is refused before the stream starts.
    auto probe = store.ReadChanges(after, 1);
    if (!probe.ok()) return refuse(probe.status());
  }
  auto* stream = new Stream(this, context, std::move(root), after);
  {
    std::lock_guard lock(mu_);
    streams_.insert(stream);
    if (metrics_) metrics_->streams.Increment();
  }
  stream->Pump();
  return stream;
}

void WatchService::OnCommitted(uint64_t seq) {
  std::lock_guard lock(mu_);
  for (Stream* s : streams_) s->Notify(seq);
}

void WatchService::Remove(Stream* stream) {
  std::lock_guard lock(mu_);
  if (streams_.erase(stream) != 0 && metrics_) metrics_->streams.Decrement();
}

}  // namespace whistle::services
