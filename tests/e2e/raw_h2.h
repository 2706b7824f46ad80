// RawH2: a bare HTTP/2 client connection for tests that behave as no gRPC
// client would (a message never finished, streams left stalled). It speaks
// just enough HTTP/2 to be served: the preface, SETTINGS and PING acks, flow
// control on what it sends. It does not decode answers (no HPACK decoder): it
// records only which streams ended (END_STREAM, RST_STREAM, GOAWAY, EOF).
// Single-threaded; one object per connection.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace whistle::testing {

class RawH2 {
 public:
  // Connects to 127.0.0.1:`port` and sends the client preface; ok() says whether it worked.
  explicit RawH2(int port);
  ~RawH2();
  RawH2(const RawH2&) = delete;
  RawH2& operator=(const RawH2&) = delete;

  bool ok() const { return fd_ >= 0 && !closed_; }

  // Opens a gRPC request stream (POST `path`, application/grpc, te: trailers,
  // plus `headers`); returns its id.
  uint32_t Open(const std::string& path,
                const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Sends `bytes` as DATA, waiting for flow-control window (reading frames while
  // it waits) at most `timeout_ms`. Returns how many bytes went out.
  size_t Send(uint32_t stream, std::string_view bytes, bool end_stream, int timeout_ms);
  // Reads and handles frames for `timeout_ms` (or until the peer closes).
  void Pump(int timeout_ms);

  // The stream has ended from the server's side (trailers, reset, GOAWAY below it or EOF).
  bool Ended(uint32_t stream) const;
  bool closed() const { return closed_; }  // EOF or error on the socket
  bool goaway() const { return goaway_; }  // the server sent GOAWAY

  // A gRPC length-prefixed message header for `length` bytes.
  static std::string Prefix(uint32_t length);

 private:
  void WriteFrame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload);
  bool ReadSome(int timeout_ms);  // false: nothing arrived in time, or closed
  void HandleFrames();

  int fd_ = -1;
  bool closed_ = false;
  bool goaway_ = false;
  uint32_t goaway_last_stream_ = 0;
  uint32_t next_stream_ = 1;
  int64_t conn_window_ = 65535;
  int64_t initial_stream_window_ = 65535;
  std::map<uint32_t, int64_t> stream_window_;
  std::map<uint32_t, bool> ended_;
  std::string in_;
};

}  // namespace whistle::testing
