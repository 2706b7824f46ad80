#include "tests/e2e/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace whistle::testing {

namespace {

// Per direction: stop reading from a side once this much waits for the other.
constexpr size_t kMaxBuffered = 4 << 20;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error("TcpProxy: " + what + ": " + std::strerror(errno));
}

void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Closes with a reset instead of a FIN.
void CloseWithReset(int fd) {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

}  // namespace

TcpProxy::TcpProxy(std::string target_host_port) : target_(std::move(target_host_port)) {
  auto colon = target_.rfind(':');
  if (colon == std::string::npos)
    throw std::invalid_argument("TcpProxy: want host:port, got " + target_);
  std::string host = target_.substr(0, colon);
  std::string port = target_.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
    throw std::invalid_argument("TcpProxy: cannot resolve " + target_ + ": " + gai_strerror(rc));
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(res->ai_addr);
  target_addr_.assign(bytes, bytes + res->ai_addrlen);
  freeaddrinfo(res);

  // CLOEXEC everywhere: processes forked by the test (whistled) must not keep our
  // sockets open, or a close here would not reach the peer.
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) Fail("socket");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Fail("bind");
  if (listen(listen_fd_, 128) != 0) Fail("listen");
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) Fail("pipe2");
  thread_ = std::thread(&TcpProxy::Loop, this);
}

TcpProxy::~TcpProxy() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    ++requested_;
    Wake();
  }
  thread_.join();
  for (auto& c : conns_) Close(*c);
  conns_.clear();
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

void TcpProxy::Wake() {
  char x = 'x';
  (void)!write(wake_[1], &x, 1);  // a full pipe already means "wake up"
}

void TcpProxy::Sync(std::unique_lock<std::mutex>& lock) {
  uint64_t mine = ++requested_;
  Wake();
  cv_.wait(lock, [&] { return seen_ >= mine; });
}

void TcpProxy::Pause() {
  std::unique_lock lock(mu_);
  paused_ = true;
  Sync(lock);
}

void TcpProxy::Resume() {
  std::unique_lock lock(mu_);
  paused_ = false;
  Sync(lock);
}

bool TcpProxy::paused() const {
  std::lock_guard lock(mu_);
  return paused_;
}

void TcpProxy::DropAll() {
  std::unique_lock lock(mu_);
  drop_ = true;
  Sync(lock);
}

int TcpProxy::connections() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& c : conns_) n += c->closed ? 0 : 1;
  return n;
}

int64_t TcpProxy::accepted() const {
  std::lock_guard lock(mu_);
  return accepted_;
}

void TcpProxy::Dial(Conn& c) {
  const auto* addr = reinterpret_cast<const sockaddr*>(target_addr_.data());
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Reset(c);
    return;
  }
  NoDelay(fd);
  c.upstream.fd = fd;
  if (connect(fd, addr, static_cast<socklen_t>(target_addr_.size())) == 0) {
    c.connecting = false;
  } else if (errno == EINPROGRESS) {
    c.connecting = true;
  } else {
    Reset(c);  // the target is down: the client sees a reset, as from a dead peer
  }
}

void TcpProxy::Reset(Conn& c) {
  for (Side* s : {&c.client, &c.upstream}) {
    if (s->fd >= 0) CloseWithReset(s->fd);
    s->fd = -1;
  }
  c.closed = true;
}

void TcpProxy::Close(Conn& c) {
  for (Side* s : {&c.client, &c.upstream}) {
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
  }
  c.closed = true;
}

void TcpProxy::Pump(Conn& c, Side& from, Side& to) {
  char buf[64 * 1024];
  while (!c.closed && !from.read_eof && to.out.size() < kMaxBuffered) {
    ssize_t n = recv(from.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      to.out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      from.read_eof = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else {
      Reset(c);  // a reset (or error) on one side resets the other
    }
  }
  if (!c.closed) Flush(c, to);
}

void TcpProxy::Flush(Conn& c, Side& to) {
  while (!c.closed && !to.out.empty()) {
    ssize_t n = send(to.fd, to.out.data(), to.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      to.out.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      Reset(c);
    }
  }
}

void TcpProxy::Loop() {
  std::unique_lock lock(mu_);
  std::vector<pollfd> fds;
  struct Owner {
    Conn* conn;
    Side* side;  // nullptr: the upstream connect in progress
  };
  std::vector<Owner> owners;
  while (true) {
    if (drop_) {
      for (auto& c : conns_) Reset(*c);
      drop_ = false;
    }
    if (stop_) break;
    if (!paused_) {
      for (auto& c : conns_) {
        if (!c->closed && c->upstream.fd < 0) Dial(*c);
      }
    }
    std::erase_if(conns_, [](const auto& c) { return c->closed; });
    seen_ = requested_;
    cv_.notify_all();

    fds.clear();
    owners.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    if (!paused_) {
      for (auto& c : conns_) {
        if (c->connecting) {
          fds.push_back({c->upstream.fd, POLLOUT, 0});
          owners.push_back({c.get(), nullptr});
          continue;
        }
        for (auto [s, o] :
             {std::pair{&c->client, &c->upstream}, std::pair{&c->upstream, &c->client}}) {
          short events = 0;
          if (!s->read_eof && o->out.size() < kMaxBuffered) events |= POLLIN;
          if (!s->out.empty()) events |= POLLOUT;
          if (events == 0) continue;  // not even polled: an idle half must not spin on POLLHUP
          fds.push_back({s->fd, events, 0});
          owners.push_back({c.get(), s});
        }
      }
    }
    const uint64_t generation = requested_;
    lock.unlock();
    int ready = poll(fds.data(), fds.size(), -1);
    lock.lock();
    if (ready < 0) continue;  // EINTR

    if (fds[0].revents != 0) {
      char drain[256];
      while (read(wake_[0], drain, sizeof(drain)) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) {
      // Accepted even while paused: held until Resume dials them onward.
      while (true) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        NoDelay(fd);
        auto c = std::make_unique<Conn>();
        c->client.fd = fd;
        ++accepted_;
        if (!paused_) Dial(*c);
        conns_.push_back(std::move(c));
      }
    }
    // A control call came in while polling (pause, drop, stop): the results may name
    // sockets that are gone, and a pause must stop every byte. Start over.
    if (requested_ != generation || paused_) continue;

    for (size_t i = 2; i < fds.size(); ++i) {
      const short revents = fds[i].revents;
      Conn& c = *owners[i - 2].conn;
      if (revents == 0 || c.closed) continue;
      Side* s = owners[i - 2].side;
      if (s == nullptr) {  // the upstream connect finished, one way or the other
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c.upstream.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          Reset(c);
        } else {
          c.connecting = false;
        }
        continue;
      }
      Side& other = s == &c.client ? c.upstream : c.client;
      if (revents & POLLERR) {
        Reset(c);
        continue;
      }
      if (revents & (POLLIN | POLLHUP)) {
        if (!s->read_eof) Pump(c, *s, other);
      }
      if (!c.closed && (revents & (POLLOUT | POLLHUP)) && !s->out.empty()) Flush(c, *s);
    }

    // Pass FINs on once the bytes before them are delivered; close when both halves are done.
    for (auto& c : conns_) {
      if (c->closed || c->connecting || c->upstream.fd < 0) continue;
      for (auto [from, to] :
           {std::pair{&c->client, &c->upstream}, std::pair{&c->upstream, &c->client}}) {
        if (from->read_eof && to->out.empty() && !to->shut_wr) {
          shutdown(to->fd, SHUT_WR);
          to->shut_wr = true;
        }
      }
      if (c->client.shut_wr && c->upstream.shut_wr) Close(*c);
    }
  }
  seen_ = requested_;
  cv_.notify_all();
}

}  // namespace whistle::testing
