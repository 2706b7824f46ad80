#include "link/session.h"

#include <algorithm>

#include "actors/directives.h"
#include "link/peer.h"

namespace whistle::link {

namespace {

constexpr uint64_t kWindow = 512;  // envelopes in flight, unacknowledged
constexpr size_t kPumpBatch = 64;  // outbox entries read per pass
constexpr auto kForwardTimeout = std::chrono::seconds(10);
constexpr size_t kMaxAnswerMessage = 1024;  // bytes of an owner's error message passed on

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Session::Session(LinkManager& manager, std::string peer, FrameStream& stream,
                 uint64_t peer_received)
    : manager_(manager),
      peer_(std::move(peer)),
      stream_(stream),
      keepalive_(manager.options().keepalive_ms) {
  // What the peer applied durably needs no resend.
  if (peer_received > 0) manager_.store().TrimOutbox(peer_, peer_received);
  written_ = manager_.store().LastOutboxSeq(peer_);
  acked_ = sent_ = peer_received;
  last_heard_ = std::chrono::steady_clock::now();
}

Session::~Session() {
  Close();
  if (writer_.joinable()) writer_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

void Session::Run() {
  writer_ = std::thread([this] { WriteLoop(); });
  watchdog_ = std::thread([this] { WatchLoop(); });
  v1::LinkFrame frame;
  while (stream_.Read(&frame)) {
    {
      std::lock_guard lock(mu_);
      last_heard_ = std::chrono::steady_clock::now();
    }
    OnFrame(frame);
    frame.Clear();
  }
  Close();
  writer_.join();
  watchdog_.join();
  FailForwards("node link " + peer_ + " lost", false);
}

void Session::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
  }
  cv_.notify_all();
  stream_.Cancel();
}

void Session::Notify(uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    written_ = std::max(written_, seq);
  }
  cv_.notify_all();
}

void Session::Queue(v1::LinkFrame frame) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    frames_.push_back(std::move(frame));
  }
  cv_.notify_all();
}

bool Session::CanPump() const { return written_ > sent_ && sent_ - acked_ < kWindow; }

void Session::WriteLoop() {
  for (;;) {
    std::deque<v1::LinkFrame> frames;
    bool pump = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return closed_ || !frames_.empty() || ack_out_ != 0 || CanPump(); });
      if (closed_) return;
      frames.swap(frames_);
      if (ack_out_ != 0) {
        frames.emplace_back().mutable_ack()->set_seq(ack_out_);
        ack_out_ = 0;
      }
      pump = CanPump();
    }
    // Envelopes first: a forwarded command must not overtake the transfer it follows.
    if (pump && !Pump()) return Close();
    for (const auto& f : frames) {
      if (!stream_.Write(f)) return Close();
    }
  }
}

bool Session::Pump() {
  uint64_t after, limit;
  {
    std::lock_guard lock(mu_);
    after = sent_;
    limit = std::min<uint64_t>(kPumpBatch, kWindow - (sent_ - acked_));
  }
  auto entries = manager_.store().ReadOutbox(peer_, after, limit);
  if (!entries.ok()) return false;
  for (const auto& e : *entries) {
    v1::LinkFrame frame;
    auto* env = frame.mutable_envelope();
    env->set_seq(e.seq);
    env->set_written_at_ms(e.written_at_ms);
    // A directive or its counts ("d:"/"c:" references), else a case.
    if (!manager_.node().directives().BuildPayload(e.case_id, env->mutable_payload())) {
      auto full = manager_.store().GetCaseWithHistory(e.case_id);
      if (full.ok()) {
        auto* sync = env->mutable_payload()->mutable_case_sync();
        *sync->mutable_case_() = std::move(full->first);
        for (auto& h : full->second) *sync->add_history() = std::move(h);
      }
    }
    {
      // Counted as sent before the write: the peer's ack may be read before this thread
      // runs again, and OnAck drops an ack for anything past sent_.
      std::lock_guard lock(mu_);
      sent_ = e.seq;
    }
    if (!stream_.Write(frame)) return false;
    manager_.Update(peer_, [&](LinkManager::Peer& p) {
      p.sent++;
      p.metrics.sent->Increment();
      if (e.seq <= p.max_sent) {
        p.resends++;
        p.metrics.resends->Increment();
      }
      p.max_sent = std::max(p.max_sent, e.seq);
    });
  }
  if (entries->empty()) {
    // Nothing stored after `sent_` (trimmed or numbered past): catch up.
    std::lock_guard lock(mu_);
    sent_ = std::max(sent_, written_);
  }
  return true;
}

void Session::WatchLoop() {
  auto next_ping = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!closed_) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_heard_ > 3 * keepalive_) {
      lock.unlock();
      manager_.Update(peer_, [&](LinkManager::Peer& p) {
        p.last_error = "peer silent for " + std::to_string(3 * keepalive_.count()) + " ms";
      });
      Close();
      return;
    }
    if (now >= next_ping) {
      frames_.emplace_back().mutable_ping()->set_sent_at_ns(NowNs());
      cv_.notify_all();
      next_ping = now + keepalive_;
    }
    lock.unlock();
    FailForwards("no answer from node link " + peer_ + " in time; retry", true);
    lock.lock();
    cv_.wait_until(lock, next_ping, [&] { return closed_; });
  }
}

void Session::OnFrame(v1::LinkFrame& frame) {
  switch (frame.kind_case()) {
    case v1::LinkFrame::kEnvelope:
      return OnEnvelope(*frame.mutable_envelope());
    case v1::LinkFrame::kAck:
      return OnAck(frame.ack().seq());
    case v1::LinkFrame::kForward:
      return OnForward(frame.forward());
    case v1::LinkFrame::kAnswer:
      return OnAnswer(*frame.mutable_answer());
    case v1::LinkFrame::kPing: {
      v1::LinkFrame pong;
      pong.mutable_pong()->set_sent_at_ns(frame.ping().sent_at_ns());
      return Queue(std::move(pong));
    }
    case v1::LinkFrame::kPong: {
      double ms = static_cast<double>(NowNs() - frame.pong().sent_at_ns()) / 1e6;
      if (ms < 0 || ms > 3600e3) return;  // not a pong of ours
      manager_.Update(peer_, [&](LinkManager::Peer& p) {
        p.rtt_ms = ms;
        p.metrics.rtt->Observe(ms / 1e3);
      });
      return;
    }
    default:
      // A second hello or anything unknown: the peer does not speak this protocol.
      manager_.Update(peer_, [&](LinkManager::Peer& p) {
        p.last_error = "unexpected frame kind " + std::to_string(frame.kind_case());
      });
      return Close();
  }
}

void Session::OnEnvelope(v1::LinkEnvelope& envelope) {
  const uint64_t seq = envelope.seq();
  if (seq == 0) return Close();  // numbering starts at 1
  manager_.Update(peer_, [&](LinkManager::Peer& p) {
    p.received++;
    p.metrics.received->Increment();
  });
  std::weak_ptr<Session> weak = weak_from_this();
  if (envelope.payload().has_directive_sync() || envelope.payload().has_counts_sync() ||
      envelope.payload().has_assessment_sync()) {
    return manager_.node().directives().ApplyFromLink(peer_, std::move(envelope),
                                                      [weak, seq](const Status&) {
                                                        if (auto self = weak.lock())
                                                          self->AckDurable(seq);
                                                      });
  }
  manager_.node().ApplySync(peer_, seq, std::move(*envelope.mutable_payload()->mutable_case_sync()),
                            [weak, seq](const Status&) {
                              if (auto self = weak.lock()) self->AckDurable(seq);
                            });
}

void Session::AckDurable(uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    ack_out_ = std::max(ack_out_, seq);
  }
  cv_.notify_all();
}

void Session::OnAck(uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    if (seq <= acked_ || seq > sent_) return;  // stale, or for something never sent
    acked_ = seq;
  }
  manager_.store().TrimOutbox(peer_, seq);
  manager_.Update(peer_, [&](LinkManager::Peer& p) {
    p.acked = seq;
    p.last_ack_ms = NowMs();
  });
  cv_.notify_all();
}

bool Session::QueueForward(v1::LinkFrame frame, PendingForward pending) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  frame.mutable_forward()->set_id(next_forward_++);
  pending.deadline = std::chrono::steady_clock::now() + kForwardTimeout;
  forwards_[frame.forward().id()] = std::move(pending);
  frames_.push_back(std::move(frame));
  cv_.notify_all();
  return true;
}

void Session::Forward(actors::CaseRequest req, const std::string& owner) {
  v1::LinkFrame frame;
  auto* f = frame.mutable_forward();
  f->set_case_id(req.case_id);
  *f->mutable_caller() = req.caller;
  *f->mutable_command() = req.command;
  f->set_owner_id(owner);
  f->set_hops(req.hops);
  PendingForward pending;
  pending.reply = req.reply;
  if (QueueForward(std::move(frame), std::move(pending))) return;
  req.reply(Status::Unavailable("node link " + peer_ + " is down; retry later"));
}

void Session::Call(actors::LinkCall call) {
  v1::LinkFrame frame;
  *frame.mutable_forward() = std::move(call.request);
  PendingForward pending;
  pending.call_reply = call.reply;
  if (QueueForward(std::move(frame), std::move(pending))) return;
  if (call.unsent) return call.unsent();  // closed before the frame was queued: never sent
  call.reply(Status::Unavailable("node link " + peer_ + " is down; retry later"));
}

void Session::OnCall(const v1::ForwardRequest& request) {
  std::weak_ptr<Session> weak = weak_from_this();
  const uint64_t id = request.id();
  manager_.node().HandleCall(request, [weak, id](StatusOr<v1::ForwardAnswer> result) {
    auto self = weak.lock();
    if (!self) return;
    v1::LinkFrame frame;
    auto* a = frame.mutable_answer();
    if (result.ok()) *a = std::move(result).value();
    a->set_id(id);
    a->set_code(static_cast<int>(result.status().code()));
    a->set_message(result.status().message());
    self->Queue(std::move(frame));
  });
}

void Session::OnForward(const v1::ForwardRequest& request) {
  if (request.has_receipt() || request.has_targets() || request.has_inbox() ||
      request.has_directives() || request.has_progress() || request.has_report() ||
      request.has_issue()) {
    return OnCall(request);
  }
  std::weak_ptr<Session> weak = weak_from_this();
  const uint64_t id = request.id();
  manager_.node().HandleForward(request,
                                [weak, id](StatusOr<v1::Case> result, const v1::CaseSync* sync) {
                                  auto self = weak.lock();
                                  if (!self) return;
                                  v1::LinkFrame frame;
                                  auto* a = frame.mutable_answer();
                                  a->set_id(id);
                                  a->set_code(static_cast<int>(result.status().code()));
                                  a->set_message(result.status().message());
                                  if (result.ok()) *a->mutable_case_() = std::move(result).value();
                                  if (sync != nullptr) *a->mutable_sync() = *sync;
                                  self->Queue(std::move(frame));
                                });
}

void Session::OnAnswer(v1::ForwardAnswer& answer) {
  PendingForward pending;
  {
    std::lock_guard lock(mu_);
    auto it = forwards_.find(answer.id());
    if (it == forwards_.end()) return;  // timed out already, or not ours
    pending = std::move(it->second);
    forwards_.erase(it);
  }
  if (answer.code() != 0) {
    Code code = answer.code() > 0 && answer.code() <= 16 ? static_cast<Code>(answer.code())
                                                         : Code::kInternal;
    // The owner's words reach our caller: bounded, cut at a character boundary.
    std::string message = answer.message();
    if (message.size() > kMaxAnswerMessage) {
      size_t n = kMaxAnswerMessage;
      while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;
      message.resize(n);
      message += "…";
    }
    return pending.Fail(Status(code, std::move(message)));
  }
  if (pending.call_reply) return pending.call_reply(std::move(answer));
  actors::CaseReply reply = std::move(pending.reply);
  if (!answer.has_sync()) return reply(std::move(*answer.mutable_case_()));
  // Answer once this node's copy is current, so a read here sees the change.
  auto result = std::make_shared<v1::Case>(std::move(*answer.mutable_case_()));
  manager_.node().ApplySync(
      peer_, 0, std::move(*answer.mutable_sync()),
      [reply = std::move(reply), result](const Status&) { reply(std::move(*result)); });
}

void Session::FailForwards(const std::string& why, bool expired_only) {
  std::vector<PendingForward> failed;
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    for (auto it = forwards_.begin(); it != forwards_.end();) {
      if (!expired_only || it->second.deadline <= now) {
        failed.push_back(std::move(it->second));
        it = forwards_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& pending : failed) pending.Fail(Status::Unavailable(why));
}

}  // namespace whistle::link
