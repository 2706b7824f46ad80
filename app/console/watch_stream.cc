#include "app/console/watch_stream.h"

#include <civetweb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "app/console/http.h"
#include "app/console/json_rpc.h"
#include "whistle/v1/watch.grpc.pb.h"

namespace whistle::console {

namespace {

// How long a new stream waits for the node's immediate refusal (a bad token, a
// subtree outside the caller's, a stale resume token) so it can answer with an
// HTTP status rather than 200 and an error event.
constexpr auto kAcceptWindow = std::chrono::milliseconds(300);
// Changes buffered from the node and not yet written to the browser; the node
// holds the rest (and ends a watcher that falls too far behind).
constexpr size_t kMaxQueued = 256;
constexpr auto kPoll = std::chrono::milliseconds(200);

// One Watch call. The reactor is owned by WatchStreams::Serve, which does not
// return before OnDone has run. Reads happen on gRPC's threads and hand the
// changes over under mu_; the worker thread writes them out. While the queue is
// full no read is outstanding, so a hold keeps OnDone from running while this
// class may still start a read; it is released once no read will follow.
class WatchCall final : public grpc::ClientReadReactor<v1::Change> {
 public:
  void Start(v1::WatchService::Stub* stub, const v1::WatchRequest& request) {
    stub->async()->Watch(&context_, &request, this);
    AddHold();
    reading_ = true;
    StartRead(&incoming_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    bool more = false;
    bool release = false;
    {
      std::lock_guard lock(mu_);
      reading_ = false;
      if (!ok) {  // the stream ended; OnDone follows once the hold is gone
        release = StopReadingLocked();
      } else {
        queue_.push_back(std::move(incoming_));
        incoming_.Clear();
        more = reading_ = queue_.size() < kMaxQueued;
      }
      cv_.notify_all();
    }
    // Outside mu_: gRPC may run OnDone from RemoveHold.
    if (more) StartRead(&incoming_);
    if (release) RemoveHold();
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(mu_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }

  // Waits up to `timeout` for a change or the end. Returns a change when one is queued.
  std::optional<v1::Change> Next(std::chrono::milliseconds timeout) {
    std::optional<v1::Change> change;
    bool more = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || done_; });
      if (queue_.empty()) return std::nullopt;
      change = std::move(queue_.front());
      queue_.pop_front();
      // Reading was paused at kMaxQueued: go on once half is written out.
      more = !reading_ && !stopped_ && queue_.size() < kMaxQueued / 2;
      if (more) reading_ = true;
    }
    if (more) StartRead(&incoming_);
    return change;
  }

  // True (with the status) once the call has ended and everything queued was taken.
  bool Finished(grpc::Status* status) {
    std::lock_guard lock(mu_);
    if (!done_ || !queue_.empty()) return false;
    *status = status_;
    return true;
  }
  bool HasQueued() {
    std::lock_guard lock(mu_);
    return !queue_.empty();
  }

  // Cancels (if still running) and waits for OnDone.
  void CancelAndWait() {
    bool release = false;
    {
      std::lock_guard lock(mu_);
      // An outstanding read fails after the cancel and releases the hold itself.
      if (!reading_) release = StopReadingLocked();
    }
    context_.TryCancel();
    if (release) RemoveHold();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

  grpc::ClientContext& context() { return context_; }

 private:
  // No read will be started any more; true the first time (the caller then removes
  // the hold, outside mu_).
  bool StopReadingLocked() {
    if (stopped_) return false;
    stopped_ = true;
    return true;
  }

  grpc::ClientContext context_;
  v1::Change incoming_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::Change> queue_;
  bool reading_ = false;  // a StartRead is outstanding
  bool stopped_ = false;  // no read will be started again (the hold is released)
  bool done_ = false;
  grpc::Status status_;
};

// A token from the node is printed in an `id:` line: only if it is one line of
// printable ASCII.
bool PrintableLine(const std::string& text) {
  if (text.empty() || text.size() > 256) return false;
  for (unsigned char c : text) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

std::string ChangeEvent(const v1::Change& change) {
  google::protobuf::util::JsonPrintOptions print;
  print.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(change, &json, print).ok()) json = "{}";
  std::string out;
  if (PrintableLine(change.token())) out += "id: " + change.token() + "\n";
  out += "event: change\ndata: " + json + "\n\n";
  return out;
}

}  // namespace

WatchStreams::WatchStreams(std::shared_ptr<grpc::Channel> channel, int max_streams,
                           int keepalive_ms)
    : channel_(std::move(channel)), max_streams_(max_streams), keepalive_ms_(keepalive_ms) {}

int WatchStreams::Serve(mg_connection* conn, const Request& request) {
  auto send_error = [&](const HttpReply& reply) { return SendReply(conn, reply); };
  if (stopping_) return send_error(ErrorReply(503, "UNAVAILABLE", "the console is stopping"));
  if (open_.fetch_add(1) >= max_streams_) {
    open_.fetch_sub(1);
    return send_error(ErrorReply(
        503, "UNAVAILABLE",
        "too many open watch streams (" + std::to_string(max_streams_) + "); retry later"));
  }
  struct Release {
    std::atomic<int>& n;
    ~Release() { n.fetch_sub(1); }
  } release{open_};

  auto stub = v1::WatchService::NewStub(channel_);
  v1::WatchRequest watch;
  watch.set_jurisdiction_id(request.jurisdiction_id);
  watch.set_from_token(request.from_token);
  WatchCall call;
  call.context().AddMetadata("authorization", "Bearer " + request.token);
  call.Start(stub.get(), watch);

  // An immediate refusal gets its own status.
  auto accept_until = std::chrono::steady_clock::now() + kAcceptWindow;
  grpc::Status status;
  while (std::chrono::steady_clock::now() < accept_until && !call.HasQueued()) {
    if (call.Finished(&status)) {
      if (status.ok()) status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the watch ended");
      return send_error(FromStatus(status));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  std::string head = ResponseHead(200);
  head += "Content-Type: text/event-stream; charset=utf-8\r\n";
  head += "Cache-Control: no-store\r\n";
  head += "X-Accel-Buffering: no\r\n";
  head += "Transfer-Encoding: chunked\r\n\r\n";
  mg_write(conn, head.data(), head.size());
  // A first comment so the browser's fetch() resolves at once.
  bool alive = SendChunk(conn, ": open\n\n");

  auto last_write = std::chrono::steady_clock::now();
  const auto keepalive = std::chrono::milliseconds(keepalive_ms_);
  while (alive && !stopping_) {
    if (call.Finished(&status)) {
      if (!status.ok()) {
        SendChunk(conn, "event: error\ndata: " +
                            ErrorJson(CodeName(status.error_code()), status.error_message()) +
                            "\n\n");
      }
      break;
    }
    auto wait = std::min<std::chrono::milliseconds>(
        kPoll, std::chrono::duration_cast<std::chrono::milliseconds>(
                   keepalive - (std::chrono::steady_clock::now() - last_write)));
    if (wait.count() < 0) wait = std::chrono::milliseconds(0);
    if (std::optional<v1::Change> change = call.Next(wait)) {
      alive = SendChunk(conn, ChangeEvent(*change));
      last_write = std::chrono::steady_clock::now();
      continue;
    }
    if (std::chrono::steady_clock::now() - last_write >= keepalive) {
      alive = SendChunk(conn, ": ping\n\n");
      last_write = std::chrono::steady_clock::now();
    }
  }
  call.CancelAndWait();
  if (alive) SendChunk(conn, "");  // the end of the chunked body
  return 200;
}

}  // namespace whistle::console
