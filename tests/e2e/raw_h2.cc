#include "tests/e2e/raw_h2.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace whistle::testing {

namespace {

constexpr uint8_t kData = 0, kHeaders = 1, kRstStream = 3, kSettings = 4, kPing = 6, kGoaway = 7,
                  kWindowUpdate = 8;
constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4, kAck = 0x1;
constexpr size_t kMaxFrame = 16384;

void PutInt(std::string& out, uint64_t value, int prefix_bits, uint8_t first_byte_flags) {
  const uint64_t max = (1u << prefix_bits) - 1;
  if (value < max) {
    out += static_cast<char>(first_byte_flags | value);
    return;
  }
  out += static_cast<char>(first_byte_flags | max);
  value -= max;
  while (value >= 128) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

// HPACK "literal header field without indexing, new name", no Huffman.
void PutHeader(std::string& out, std::string_view name, std::string_view value) {
  out += '\0';
  PutInt(out, name.size(), 7, 0);
  out += name;
  PutInt(out, value.size(), 7, 0);
  out += value;
}

uint32_t Be32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
}

std::string Be32String(uint32_t v) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
  return out;
}

}  // namespace

RawH2::RawH2(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (::send(fd_, preface.data(), preface.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(preface.size())) {
    closed_ = true;
    return;
  }
  // SETTINGS: ENABLE_PUSH 0; a large receive window so answers are never held back.
  std::string settings;
  settings += std::string("\x00\x02", 2) + Be32String(0);
  settings += std::string("\x00\x04", 2) + Be32String(1 << 24);
  WriteFrame(kSettings, 0, 0, settings);
  WriteFrame(kWindowUpdate, 0, 0, Be32String(1 << 24));
}

RawH2::~RawH2() {
  if (fd_ >= 0) close(fd_);
}

std::string RawH2::Prefix(uint32_t length) { return std::string(1, '\0') + Be32String(length); }

void RawH2::WriteFrame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string frame;
  frame += static_cast<char>(payload.size() >> 16);
  frame += static_cast<char>(payload.size() >> 8);
  frame += static_cast<char>(payload.size());
  frame += static_cast<char>(type);
  frame += static_cast<char>(flags);
  frame += Be32String(stream & 0x7fffffff);
  frame += payload;
  size_t off = 0;
  while (off < frame.size() && !closed_) {
    ssize_t n = ::send(fd_, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Keep reading while the server's socket buffer drains, so it is never
      // blocked writing to us either.
      pollfd p{fd_, POLLIN | POLLOUT, 0};
      if (poll(&p, 1, 1000) > 0 && (p.revents & POLLIN)) ReadSome(0);
      continue;
    }
    closed_ = true;
  }
}

uint32_t RawH2::Open(const std::string& path,
                     const std::vector<std::pair<std::string, std::string>>& headers) {
  uint32_t id = next_stream_;
  next_stream_ += 2;
  std::string block;
  PutHeader(block, ":method", "POST");
  PutHeader(block, ":scheme", "http");
  PutHeader(block, ":path", path);
  PutHeader(block, ":authority", "localhost");
  PutHeader(block, "content-type", "application/grpc");
  PutHeader(block, "te", "trailers");
  for (const auto& [name, value] : headers) PutHeader(block, name, value);
  stream_window_[id] = initial_stream_window_;
  ended_[id] = false;
  WriteFrame(kHeaders, kEndHeaders, id, block);
  return id;
}

size_t RawH2::Send(uint32_t stream, std::string_view bytes, bool end_stream, int timeout_ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t sent = 0;
  while (!closed_ && !Ended(stream)) {
    size_t left = bytes.size() - sent;
    if (left == 0 && !end_stream) break;
    int64_t window = std::min(conn_window_, stream_window_[stream]);
    size_t chunk =
        std::min<size_t>({left, kMaxFrame, static_cast<size_t>(std::max<int64_t>(window, 0))});
    if (chunk > 0 || (left == 0 && end_stream)) {
      bool last = chunk == left;
      WriteFrame(kData, last && end_stream ? kEndStream : 0, stream, bytes.substr(sent, chunk));
      conn_window_ -= static_cast<int64_t>(chunk);
      stream_window_[stream] -= static_cast<int64_t>(chunk);
      sent += chunk;
      if (last) break;
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= until) break;
    ReadSome(static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()));
  }
  return sent;
}

void RawH2::Pump(int timeout_ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!closed_) {
    auto now = std::chrono::steady_clock::now();
    if (now >= until) break;
    ReadSome(static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()));
  }
}

bool RawH2::ReadSome(int timeout_ms) {
  if (closed_) return false;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[65536];
  bool any = false;
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      any = true;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    closed_ = true;  // EOF or reset
    break;
  }
  HandleFrames();
  return any;
}

void RawH2::HandleFrames() {
  // The server's preface SETTINGS arrive first; everything after is frames too.
  while (in_.size() >= 9) {
    uint32_t length = (static_cast<uint32_t>(static_cast<uint8_t>(in_[0])) << 16) |
                      (static_cast<uint32_t>(static_cast<uint8_t>(in_[1])) << 8) |
                      static_cast<uint8_t>(in_[2]);
    if (in_.size() < 9 + length) return;
    uint8_t type = static_cast<uint8_t>(in_[3]);
    uint8_t flags = static_cast<uint8_t>(in_[4]);
    uint32_t stream = Be32(in_, 5) & 0x7fffffff;
    std::string payload = in_.substr(9, length);
    in_.erase(0, 9 + length);
    switch (type) {
      case kSettings:
        if (!(flags & kAck)) {
          for (size_t i = 0; i + 6 <= payload.size(); i += 6) {
            uint16_t id = static_cast<uint16_t>((static_cast<uint8_t>(payload[i]) << 8) |
                                                static_cast<uint8_t>(payload[i + 1]));
            uint32_t value = Be32(payload, i + 2);
            if (id == 4) {  // INITIAL_WINDOW_SIZE applies to open streams too
              int64_t delta = static_cast<int64_t>(value) - initial_stream_window_;
              initial_stream_window_ = value;
              for (auto& [s, w] : stream_window_) w += delta;
            }
          }
          WriteFrame(kSettings, kAck, 0, "");
        }
        break;
      case kPing:
        if (!(flags & kAck)) WriteFrame(kPing, kAck, 0, payload);
        break;
      case kWindowUpdate:
        if (payload.size() == 4) {
          uint32_t inc = Be32(payload, 0) & 0x7fffffff;
          if (stream == 0) {
            conn_window_ += inc;
          } else {
            stream_window_[stream] += inc;
          }
        }
        break;
      case kHeaders:
        if (flags & kEndStream) ended_[stream] = true;
        break;
      case kData:
        if (flags & kEndStream) ended_[stream] = true;
        break;
      case kRstStream:
        ended_[stream] = true;
        break;
      case kGoaway:
        goaway_ = true;
        goaway_last_stream_ = payload.size() >= 4 ? Be32(payload, 0) & 0x7fffffff : 0;
        break;
      default:
        break;
    }
  }
}

bool RawH2::Ended(uint32_t stream) const {
  if (closed_) return true;
  auto it = ended_.find(stream);
  if (it != ended_.end() && it->second) return true;
  return false;
}

}  // namespace whistle::testing
