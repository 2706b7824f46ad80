// TcpProxy: a TCP forwarder on a free 127.0.0.1 port for link-failure tests. Put it
// between a child node and its parent (--parent-address = proxy.address()) and cut,
// heal or reset the cable from the test.
//
// Every accepted connection is forwarded to the target, both directions, by one
// background thread (poll). Half-closes travel through (a FIN is passed on once the
// bytes before it are delivered); a reset on either side resets the other.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace whistle::testing {

class TcpProxy {
 public:
  // Listens at once; connections to `target_host_port` ("127.0.0.1:7400") are made
  // per accepted connection, so the target need not be up yet (if it is down when a
  // connection arrives, that connection is reset).
  explicit TcpProxy(std::string target_host_port);
  // Stops the thread and closes every socket (an ordinary close, not a reset).
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& target() const { return target_; }

  // A cut cable: no byte moves in either direction and nothing is closed; both peers see
  // silence. New connections are still accepted, but held (not yet dialled onward).
  // When Pause() returns, no further byte moves.
  void Pause();
  // Moves bytes again: everything held flows on, in order, nothing dropped; held
  // connections are dialled onward.
  void Resume();
  bool paused() const;
  // Closes every current connection on both sides with a reset (SO_LINGER 0); new
  // connections are accepted as usual. When it returns, the resets are sent.
  void DropAll();
  // Connections currently open (accepted and not yet closed).
  int connections() const;
  // Connections accepted since construction.
  int64_t accepted() const;

 private:
  struct Side {
    int fd = -1;
    std::string out;  // bytes read from the other side, not yet written to this one
    bool read_eof = false;
    bool shut_wr = false;
  };
  struct Conn {
    Side client, upstream;  // upstream.fd == -1: not dialled yet (held while paused)
    bool connecting = false;
    bool closed = false;
  };

  void Loop();
  void Sync(std::unique_lock<std::mutex>& lock);  // waits until the thread has seen the change
  void Wake();
  void Dial(Conn& c);
  void Reset(Conn& c);
  void Close(Conn& c);
  void Pump(Conn& c, Side& from, Side& to);
  void Flush(Conn& c, Side& to);

  std::string target_;
  std::vector<uint8_t> target_addr_;  // sockaddr storage of the resolved target
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool paused_ = false;
  bool drop_ = false;
  uint64_t requested_ = 0;  // bumped by each control call
  uint64_t seen_ = 0;       // the last request the thread has acted on
  std::vector<std::unique_ptr<Conn>> conns_;
  int64_t accepted_ = 0;
  std::thread thread_;
};

}  // namespace whistle::testing
