// Session: one connected node link, either side. The caller's thread reads
// frames; a writer thread sends control frames and outbox envelopes (at most
// kWindow unacknowledged); a watchdog sends pings and cancels the stream when
// the peer has been silent for three keepalive periods.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "actors/link_hub.h"
#include "actors/messages.h"
#include "link/link_manager.h"

namespace whistle::link {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(LinkManager& manager, std::string peer, FrameStream& stream, uint64_t peer_received);
  ~Session();

  // Reads until the stream ends or Close(); then fails pending forwards.
  void Run();
  void Close();
  // Outbox entry `seq` is durable and may be sent.
  void Notify(uint64_t seq);
  void Forward(actors::CaseRequest req, const std::string& owner);
  void Call(actors::LinkCall call);

 private:
  struct PendingForward {
    actors::CaseReply reply;                                      // a case command's, or
    std::function<void(StatusOr<v1::ForwardAnswer>)> call_reply;  // a LinkCall's
    std::chrono::steady_clock::time_point deadline;
    void Fail(const Status& why) { reply ? reply(why) : call_reply(why); }
  };

  // Queues a forward frame with the next id; false when the session is closed.
  bool QueueForward(v1::LinkFrame frame, PendingForward pending);

  void Queue(v1::LinkFrame frame);
  void WriteLoop();
  void WatchLoop();
  bool CanPump() const;  // mu_ held
  bool Pump();           // writer thread; false when the stream broke
  void OnFrame(v1::LinkFrame& frame);
  void OnEnvelope(v1::LinkEnvelope& envelope);
  void OnAck(uint64_t seq);
  void OnForward(const v1::ForwardRequest& request);
  void OnAnswer(v1::ForwardAnswer& answer);
  void OnCall(const v1::ForwardRequest& request);
  void AckDurable(uint64_t seq);
  void FailForwards(const std::string& why, bool expired_only);

  LinkManager& manager_;
  const std::string peer_;
  FrameStream& stream_;
  const std::chrono::milliseconds keepalive_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::deque<v1::LinkFrame> frames_;
  uint64_t written_ = 0;  // last durable outbox seq
  uint64_t acked_ = 0;    // peer applied up to here
  uint64_t sent_ = 0;     // sent up to here in this session
  uint64_t ack_out_ = 0;  // ack to send (0 = none)
  uint64_t next_forward_ = 1;
  std::unordered_map<uint64_t, PendingForward> forwards_;
  std::chrono::steady_clock::time_point last_heard_;
  std::thread writer_;
  std::thread watchdog_;
};

}  // namespace whistle::link
