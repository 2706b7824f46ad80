#include "tests/e2e/raw_http2.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>

namespace whistle::testing {
namespace {

constexpr uint8_t kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kPing = 0x6,
                  kGoAway = 0x7, kWindowUpdate = 0x8, kContinuation = 0x9;
constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4, kPadded = 0x8, kPriority = 0x20;
constexpr uint32_t kStream = 1;

// RFC 7541 Appendix A.
constexpr std::array<std::pair<const char*, const char*>, 61> kStatic = {{
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
}};

void PutInt(std::string& out, uint8_t first, int prefix_bits, uint64_t v) {
  const uint64_t max = (1u << prefix_bits) - 1;
  if (v < max) {
    out += static_cast<char>(first | v);
    return;
  }
  out += static_cast<char>(first | max);
  v -= max;
  while (v >= 128) {
    out += static_cast<char>((v & 127) | 128);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void PutString(std::string& out, const std::string& s) {
  PutInt(out, 0x00, 7, s.size());  // H = 0: raw octets
  out += s;
}

// Literal header field without indexing, new name (RFC 7541 6.2.2).
void PutHeader(std::string& out, const std::string& name, const std::string& value) {
  out += '\0';
  PutString(out, name);
  PutString(out, value);
}

std::string FrameHeader(size_t length, uint8_t type, uint8_t flags, uint32_t stream) {
  std::string h(9, '\0');
  h[0] = static_cast<char>(length >> 16);
  h[1] = static_cast<char>(length >> 8);
  h[2] = static_cast<char>(length);
  h[3] = static_cast<char>(type);
  h[4] = static_cast<char>(flags);
  h[5] = static_cast<char>((stream >> 24) & 0x7f);
  h[6] = static_cast<char>(stream >> 16);
  h[7] = static_cast<char>(stream >> 8);
  h[8] = static_cast<char>(stream);
  return h;
}

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

class Connection {
 public:
  explicit Connection(int timeout_ms)
      : deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms)) {}
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool Open(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }

  bool Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  bool SendFrame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
    return Send(FrameHeader(payload.size(), type, flags, stream) + payload);
  }

  // Reads exactly n bytes before the deadline.
  bool Read(size_t n, std::string* out) {
    out->clear();
    while (out->size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline_ - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      char buf[16384];
      ssize_t got = ::recv(fd_, buf, std::min(sizeof buf, n - out->size()), 0);
      if (got <= 0) return false;
      out->append(buf, static_cast<size_t>(got));
      received_ += static_cast<size_t>(got);
    }
    return true;
  }

  struct Frame {
    uint8_t type, flags;
    uint32_t stream;
    std::string payload;
  };

  std::optional<Frame> ReadFrame() {
    std::string h;
    if (!Read(9, &h)) return std::nullopt;
    auto u = [&](int i) { return static_cast<uint8_t>(h[i]); };
    size_t len = (size_t{u(0)} << 16) | (size_t{u(1)} << 8) | u(2);
    Frame f{u(3), u(4), Be32(reinterpret_cast<const uint8_t*>(h.data()) + 5) & 0x7fffffff, {}};
    if (!Read(len, &f.payload)) return std::nullopt;
    return f;
  }

  size_t received() const { return received_; }

 private:
  int fd_ = -1;
  std::chrono::steady_clock::time_point deadline_;
  size_t received_ = 0;
};

// HPACK decoding of the server's header blocks.
class Decoder {
 public:
  // Appends (name, value) pairs; false on a malformed block.
  bool Decode(const std::string& block, RawHeaders* out) {
    const auto* p = reinterpret_cast<const uint8_t*>(block.data());
    const uint8_t* end = p + block.size();
    while (p < end) {
      uint8_t b = *p;
      if (b & 0x80) {  // indexed
        uint64_t index;
        if (!Int(p, end, 7, &index)) return false;
        std::pair<std::string, std::string> field;
        if (!Lookup(index, &field)) return false;
        out->push_back(field);
      } else if ((b & 0xe0) == 0x20) {  // dynamic table size update
        uint64_t size;
        if (!Int(p, end, 5, &size)) return false;
        max_size_ = size;
        Evict();
      } else {
        const bool index_it = (b & 0xc0) == 0x40;
        const int bits = index_it ? 6 : 4;
        uint64_t index;
        if (!Int(p, end, bits, &index)) return false;
        std::pair<std::string, std::string> field;
        if (index == 0) {
          if (!String(p, end, &field.first)) return false;
        } else {
          std::pair<std::string, std::string> named;
          if (!Lookup(index, &named)) return false;
          field.first = named.first;
        }
        if (!String(p, end, &field.second)) return false;
        if (index_it) {
          dynamic_.push_front(field);
          size_ += field.first.size() + field.second.size() + 32;
          Evict();
        }
        out->push_back(std::move(field));
      }
    }
    return true;
  }

 private:
  static bool Int(const uint8_t*& p, const uint8_t* end, int bits, uint64_t* v) {
    if (p >= end) return false;
    const uint64_t max = (1u << bits) - 1;
    *v = *p++ & max;
    if (*v < max) return true;
    int shift = 0;
    while (p < end && shift < 56) {
      uint8_t b = *p++;
      *v += uint64_t{b & 127u} << shift;
      shift += 7;
      if (!(b & 128)) return true;
    }
    return false;
  }
  static bool String(const uint8_t*& p, const uint8_t* end, std::string* s) {
    if (p >= end) return false;
    const bool huffman = (*p & 0x80) != 0;
    uint64_t len;
    if (!Int(p, end, 7, &len)) return false;
    if (static_cast<uint64_t>(end - p) < len) return false;
    s->assign(reinterpret_cast<const char*>(p), len);
    if (huffman) *s = "<huffman>" + *s;  // not needed for what the tests read
    p += len;
    return true;
  }
  bool Lookup(uint64_t index, std::pair<std::string, std::string>* field) const {
    if (index == 0) return false;
    if (index <= kStatic.size()) {
      *field = {kStatic[index - 1].first, kStatic[index - 1].second};
      return true;
    }
    index -= kStatic.size() + 1;
    if (index >= dynamic_.size()) return false;
    *field = dynamic_[index];
    return true;
  }
  void Evict() {
    while (size_ > max_size_ && !dynamic_.empty()) {
      size_ -= dynamic_.back().first.size() + dynamic_.back().second.size() + 32;
      dynamic_.pop_back();
    }
  }
  std::deque<std::pair<std::string, std::string>> dynamic_;
  size_t size_ = 0;
  size_t max_size_ = 4096;
};

void Absorb(const RawHeaders& headers, RawResponse* r) {
  for (const auto& [name, value] : headers) {
    if (name == ":status") r->http_status = std::atoi(value.c_str());
    if (name == "grpc-status") r->grpc_status = std::atoi(value.c_str());
    if (name == "grpc-message") r->grpc_message = PercentDecode(value);
  }
}

}  // namespace

RawResponse RawGrpcCall(int port, const std::string& path, const RawHeaders& metadata,
                        const std::string& message, int timeout_ms) {
  RawResponse r;
  Connection c(timeout_ms);
  if (!c.Open(port)) {
    r.error = "connect failed";
    return r;
  }
  // Preface and our (empty) SETTINGS.
  if (!c.Send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") || !c.SendFrame(kSettings, 0, 0, "")) {
    r.error = "send preface failed";
    return r;
  }
  std::string block;
  PutHeader(block, ":method", "POST");
  PutHeader(block, ":scheme", "http");
  PutHeader(block, ":path", path);
  PutHeader(block, ":authority", "127.0.0.1:" + std::to_string(port));
  PutHeader(block, "content-type", "application/grpc");
  PutHeader(block, "te", "trailers");
  for (const auto& [name, value] : metadata) PutHeader(block, name, value);
  // One HEADERS frame, then CONTINUATIONs of at most 16 KB (the default frame size).
  constexpr size_t kMaxFrame = 16384;
  for (size_t off = 0; off < block.size() || off == 0; off += kMaxFrame) {
    const bool first = off == 0;
    const bool last = off + kMaxFrame >= block.size();
    if (!c.SendFrame(first ? kHeaders : kContinuation, last ? kEndHeaders : 0, kStream,
                     block.substr(off, kMaxFrame))) {
      r.error = "send headers failed";
      return r;
    }
    if (last) break;
  }

  std::string body(5, '\0');
  body[1] = static_cast<char>(message.size() >> 24);
  body[2] = static_cast<char>(message.size() >> 16);
  body[3] = static_cast<char>(message.size() >> 8);
  body[4] = static_cast<char>(message.size());
  body += message;

  // Flow control: the server's windows (connection and stream) bound what we send.
  int64_t conn_window = 65535;
  int64_t stream_window = 65535;
  int64_t initial_window = 65535;
  size_t sent = 0;
  Decoder decoder;
  std::string pending_block;  // HEADERS + CONTINUATION not yet ended
  bool done = false;

  auto handle = [&](const Connection::Frame& f) -> bool {
    switch (f.type) {
      case kSettings:
        if (f.flags & kAck) return true;
        for (size_t i = 0; i + 6 <= f.payload.size(); i += 6) {
          const auto* q = reinterpret_cast<const uint8_t*>(f.payload.data()) + i;
          uint16_t id = static_cast<uint16_t>((q[0] << 8) | q[1]);
          uint32_t value = Be32(q + 2);
          if (id == 0x4) {
            stream_window += static_cast<int64_t>(value) - initial_window;
            initial_window = value;
          }
        }
        return c.SendFrame(kSettings, kAck, 0, "");
      case kPing:
        if (f.flags & kAck) return true;
        return c.SendFrame(kPing, kAck, 0, f.payload);
      case kWindowUpdate:
        if (f.payload.size() == 4) {
          int64_t inc = Be32(reinterpret_cast<const uint8_t*>(f.payload.data())) & 0x7fffffff;
          (f.stream == 0 ? conn_window : stream_window) += inc;
        }
        return true;
      case kGoAway:
        return true;
      case kRstStream:
        if (f.stream == kStream) {
          r.reset = true;
          r.answered = true;
          if (f.payload.size() == 4) {
            r.reset_code = Be32(reinterpret_cast<const uint8_t*>(f.payload.data()));
          }
          done = true;
        }
        return true;
      case kHeaders:
      case kContinuation: {
        if (f.stream != kStream) return true;
        std::string fragment = f.payload;
        if (f.type == kHeaders) {
          size_t skip = 0, pad = 0;
          if (f.flags & kPadded) {
            pad = static_cast<uint8_t>(fragment[0]);
            skip = 1;
          }
          if (f.flags & kPriority) skip += 5;
          fragment = fragment.substr(skip, fragment.size() - skip - pad);
        }
        pending_block += fragment;
        if (f.flags & kEndHeaders) {
          RawHeaders headers;
          if (!decoder.Decode(pending_block, &headers)) {
            r.error = "malformed header block from the server";
            return false;
          }
          pending_block.clear();
          Absorb(headers, &r);
        }
        if (f.flags & kEndStream) {
          r.answered = true;
          done = true;
        }
        return true;
      }
      case kData: {
        if (f.stream != kStream) return true;
        std::string data = f.payload;
        if ((f.flags & kPadded) && !data.empty()) {
          size_t pad = static_cast<uint8_t>(data[0]);
          data = data.substr(1, data.size() - 1 - std::min(pad, data.size() - 1));
        }
        if (data.size() >= 5) r.body += data.substr(5);
        if (f.flags & kEndStream) {
          r.answered = true;
          done = true;
        }
        return true;
      }
      default:
        return true;
    }
  };

  while (sent < body.size() && !done) {
    int64_t window = std::min(conn_window, stream_window);
    if (window <= 0) {
      auto f = c.ReadFrame();
      if (!f || !handle(*f)) {
        r.error = "connection ended while sending";
        r.received_bytes = c.received();
        return r;
      }
      continue;
    }
    size_t n = std::min({body.size() - sent, kMaxFrame, static_cast<size_t>(window)});
    const bool last = sent + n == body.size();
    if (!c.SendFrame(kData, last ? kEndStream : 0, kStream, body.substr(sent, n))) {
      // The server may answer and close before reading everything: read what it said.
      break;
    }
    sent += n;
    conn_window -= static_cast<int64_t>(n);
    stream_window -= static_cast<int64_t>(n);
  }
  while (!done) {
    auto f = c.ReadFrame();
    if (!f) {
      if (r.error.empty()) r.error = "no answer before the deadline or the connection closed";
      break;
    }
    if (!handle(*f)) break;
  }
  r.received_bytes = c.received();
  return r;
}

}  // namespace whistle::testing
