// TcpProxy on its own: plain sockets on 127.0.0.1, no whistled.
#include "tests/e2e/tcp_proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

// A socket that closes itself.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

// A listening socket on a free port: the proxy's target.
struct Server {
  Fd fd;
  int port = 0;
  Server() : fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr = Loopback(0);
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd.get(), 16), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  // The next connection, or an invalid Fd if none arrives in time.
  Fd Accept(std::chrono::milliseconds timeout = 5s) {
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return Fd();
    return Fd(accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }
};

Fd Connect(int port) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = Loopback(port);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

void SendAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << "send: " << strerror(errno);
    done += static_cast<size_t>(n);
  }
}

// Reads until `want` bytes arrived, the peer closed, or `timeout` passed.
std::string Read(int fd, size_t want, std::chrono::milliseconds timeout = 5s) {
  std::string got;
  auto until = std::chrono::steady_clock::now() + timeout;
  char buf[64 * 1024];
  while (got.size() < want) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) != 1) break;
    ssize_t n = recv(fd, buf, std::min(sizeof(buf), want - got.size()), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// How the peer ended the connection, waiting up to `timeout`: "eof", "reset", "open"
// (nothing happened) or "data" (bytes came instead).
std::string Ending(int fd, std::chrono::milliseconds timeout = 5s) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "open";
  char c;
  ssize_t n = recv(fd, &c, 1, 0);
  if (n == 0) return "eof";
  if (n < 0) return errno == ECONNRESET ? "reset" : std::string("error ") + strerror(errno);
  return "data";
}

std::string Pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return s;
}

TEST(TcpProxyTest, BytesPassBothWays) {
  Server server;
  TcpProxy proxy(server.address());
  EXPECT_GT(proxy.port(), 0);
  EXPECT_EQ(proxy.address(), "127.0.0.1:" + std::to_string(proxy.port()));
  Fd client = Connect(proxy.port());
  Fd upstream = server.Accept();
  ASSERT_GE(upstream.get(), 0) << "the proxy did not dial the target";
  SendAll(client.get(), "hello");
  EXPECT_EQ(Read(upstream.get(), 5), "hello");
  SendAll(upstream.get(), "world!");
  EXPECT_EQ(Read(client.get(), 6), "world!");
  // A megabyte each way arrives whole and in order.
  const std::string big = Pattern(1 << 20);
  std::thread writer([&] { SendAll(client.get(), big); });
  EXPECT_EQ(Read(upstream.get(), big.size()), big);
  writer.join();
  EXPECT_EQ(proxy.connections(), 1);
  EXPECT_EQ(proxy.accepted(), 1);
}

TEST(TcpProxyTest, HalfCloseTravels) {
  Server server;
  TcpProxy proxy(server.address());
  Fd client = Connect(proxy.port());
  Fd upstream = server.Accept();
  ASSERT_GE(upstream.get(), 0);
  SendAll(client.get(), "last words");
  shutdown(client.get(), SHUT_WR);
  EXPECT_EQ(Read(upstream.get(), 10), "last words");
  EXPECT_EQ(Ending(upstream.get()), "eof");
  // The other direction still works after the half-close.
  SendAll(upstream.get(), "reply");
  EXPECT_EQ(Read(client.get(), 5), "reply");
  upstream = Fd();
  EXPECT_EQ(Ending(client.get()), "eof");
}

TEST(TcpProxyTest, PauseHoldsBytesAndResumeDeliversThemInOrder) {
  Server server;
  TcpProxy proxy(server.address());
  Fd client = Connect(proxy.port());
  Fd upstream = server.Accept();
  ASSERT_GE(upstream.get(), 0);
  SendAll(client.get(), "before ");
  ASSERT_EQ(Read(upstream.get(), 7), "before ");

  proxy.Pause();
  EXPECT_TRUE(proxy.paused());
  SendAll(client.get(), "one ");
  SendAll(client.get(), "two ");
  SendAll(upstream.get(), "back");
  // Nothing crosses, in either direction, and nothing is closed.
  EXPECT_EQ(Read(upstream.get(), 1, 500ms), "");
  EXPECT_EQ(Read(client.get(), 1, 200ms), "");
  EXPECT_EQ(proxy.connections(), 1);
  // Megabytes more (the writer may block once the socket buffers fill, as behind a cut
  // cable): still nothing crosses.
  const std::string big = Pattern(3 << 20);
  std::thread writer([&] { SendAll(client.get(), big); });
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Read(upstream.get(), 1, 200ms), "");

  proxy.Resume();
  EXPECT_FALSE(proxy.paused());
  EXPECT_EQ(Read(client.get(), 4), "back");
  EXPECT_EQ(Read(upstream.get(), 8), "one two ");
  EXPECT_EQ(Read(upstream.get(), big.size()), big);
  writer.join();
  SendAll(client.get(), "after");
  EXPECT_EQ(Read(upstream.get(), 5), "after");
}

TEST(TcpProxyTest, ConnectionsAcceptedWhilePausedAreHeldUntilResume) {
  Server server;
  TcpProxy proxy(server.address());
  proxy.Pause();
  Fd client = Connect(proxy.port());  // the proxy accepts...
  SendAll(client.get(), "held");
  Fd none = server.Accept(500ms);  // ...but does not dial onward
  EXPECT_LT(none.get(), 0);
  EXPECT_EQ(Ending(client.get(), 200ms), "open");

  proxy.Resume();
  Fd upstream = server.Accept();
  ASSERT_GE(upstream.get(), 0);
  EXPECT_EQ(Read(upstream.get(), 4), "held");
  SendAll(upstream.get(), "ok");
  EXPECT_EQ(Read(client.get(), 2), "ok");
}

TEST(TcpProxyTest, DropAllResetsBothSidesAndKeepsAccepting) {
  Server server;
  TcpProxy proxy(server.address());
  Fd client = Connect(proxy.port());
  Fd upstream = server.Accept();
  ASSERT_GE(upstream.get(), 0);
  SendAll(client.get(), "x");
  ASSERT_EQ(Read(upstream.get(), 1), "x");

  proxy.DropAll();
  EXPECT_EQ(Ending(client.get()), "reset");
  EXPECT_EQ(Ending(upstream.get()), "reset");
  EXPECT_EQ(proxy.connections(), 0);

  Fd again = Connect(proxy.port());
  Fd upstream2 = server.Accept();
  ASSERT_GE(upstream2.get(), 0);
  SendAll(again.get(), "y");
  EXPECT_EQ(Read(upstream2.get(), 1), "y");
  EXPECT_EQ(proxy.accepted(), 2);
}

TEST(TcpProxyTest, DropAllWhilePausedResetsHeldConnections) {
  Server server;
  TcpProxy proxy(server.address());
  Fd client = Connect(proxy.port());
  Fd upstream = server.Accept();
  ASSERT_GE(upstream.get(), 0);
  proxy.Pause();
  Fd held = Connect(proxy.port());
  std::this_thread::sleep_for(100ms);
  proxy.DropAll();
  EXPECT_EQ(Ending(client.get()), "reset");
  EXPECT_EQ(Ending(upstream.get()), "reset");
  EXPECT_EQ(Ending(held.get()), "reset");
}

TEST(TcpProxyTest, TargetDownResetsTheClient) {
  int dead_port;
  {
    Server gone;  // a port nobody listens on any more
    dead_port = gone.port;
  }
  TcpProxy proxy("127.0.0.1:" + std::to_string(dead_port));
  Fd client = Connect(proxy.port());
  EXPECT_EQ(Ending(client.get()), "reset");
}

TEST(TcpProxyTest, DestructorClosesEverything) {
  Server server;
  Fd client, upstream;
  int port;
  {
    TcpProxy proxy(server.address());
    port = proxy.port();
    client = Connect(proxy.port());
    upstream = server.Accept();
    ASSERT_GE(upstream.get(), 0);
  }
  std::string c = Ending(client.get()), u = Ending(upstream.get());
  EXPECT_TRUE(c == "eof" || c == "reset") << c;
  EXPECT_TRUE(u == "eof" || u == "reset") << u;
  // The port is closed too.
  Fd probe(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = Loopback(port);
  EXPECT_NE(connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
}

}  // namespace
}  // namespace whistle::testing
