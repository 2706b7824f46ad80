#include "link/link_service.h"

#include <condition_variable>
#include <cstdio>
#include <thread>

#include "core/log.h"

namespace whistle::link {

namespace {

class ServerStream final : public FrameStream {
 public:
  ServerStream(grpc::ServerReaderWriter<v1::LinkFrame, v1::LinkFrame>* rw, grpc::ServerContext* ctx)
      : rw_(rw), ctx_(ctx) {}
  bool Read(v1::LinkFrame* frame) override { return rw_->Read(frame); }
  bool Write(const v1::LinkFrame& frame) override { return rw_->Write(frame); }
  void Cancel() override { ctx_->TryCancel(); }

 private:
  grpc::ServerReaderWriter<v1::LinkFrame, v1::LinkFrame>* rw_;
  grpc::ServerContext* ctx_;
};

// Reads the first frame, giving up (cancelling the call) after `timeout`.
bool ReadFirst(grpc::ServerReaderWriter<v1::LinkFrame, v1::LinkFrame>* rw, grpc::ServerContext* ctx,
               std::chrono::milliseconds timeout, v1::LinkFrame* frame) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread guard([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, timeout, [&] { return done; })) ctx->TryCancel();
  });
  bool ok = rw->Read(frame);
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  guard.join();
  return ok;
}

}  // namespace

grpc::Status LinkServiceImpl::Connect(
    grpc::ServerContext* context, grpc::ServerReaderWriter<v1::LinkFrame, v1::LinkFrame>* stream) {
  v1::LinkFrame first;
  auto timeout = std::chrono::milliseconds(3 * manager_.options().keepalive_ms);
  if (!ReadFirst(stream, context, timeout, &first)) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no hello in time");
  }
  if (!first.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first frame: want hello");
  }
  const v1::LinkHello& hello = first.hello();
  v1::LinkRefusal refusal = manager_.CheckHello(hello, context->auth_context().get());
  if (!refusal.reason().empty()) {
    manager_.CountRefusal(refusal.reason());
    Log(LogLevel::kError, "node link refused",
        {{"reason", refusal.reason()},
         {"peer", context->peer()},
         {"node_id", hello.node_id().substr(0, 64)},
         {"claims", hello.hosted_root().substr(0, 128)},
         {"detail", refusal.message()}});
    v1::LinkFrame out;
    *out.mutable_refusal() = refusal;
    stream->Write(out);
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refusal.message());
  }
  v1::LinkFrame welcome;
  *welcome.mutable_welcome() = manager_.Welcome(hello.hosted_root());
  if (!stream->Write(welcome)) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream lost");
  ServerStream frames(stream, context);
  manager_.RunSession(hello.hosted_root(), hello.node_id(), hello.received_seq(), frames);
  return grpc::Status::OK;
}

grpc::Status NodeServiceImpl::GetLinks(grpc::ServerContext* context,
                                       const v1::GetLinksRequest* request,
                                       v1::GetLinksResponse* response) {
  *response = manager_.Status();
  return grpc::Status::OK;
}

}  // namespace whistle::link
