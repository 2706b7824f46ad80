// ConsoleProcess: a real whistle-console child process on 127.0.0.1 with a free
// port, talking to one node. Always stopped by the destructor. And a small HTTP/1.1
// client for tests that must send what browsers will not (raw bytes, bad headers).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace whistle::testing {

class ConsoleProcess {
 public:
  // Starts whistle-console --node `node_address` --listen 127.0.0.1:<free port> plus
  // `extra_flags`; waits until /healthz answers 200. running() is false when it did not
  // come up (its log says why).
  ConsoleProcess(const std::string& node_address, std::vector<std::string> extra_flags = {});
  ~ConsoleProcess();
  ConsoleProcess(const ConsoleProcess&) = delete;
  ConsoleProcess& operator=(const ConsoleProcess&) = delete;

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  // SIGTERM and wait: the exit status (or the signal number negated).
  int Terminate();
  std::string LogText() const;

 private:
  std::string log_path_;
  int port_ = 0;
  int pid_ = -1;
};

// Runs whistle-console with `flags` until it exits: (exit code, combined output).
std::pair<int, std::string> RunConsole(const std::vector<std::string>& flags);

struct HttpResponse {
  int status = 0;                              // 0: no answer (connection refused, timeout)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // chunked bodies decoded
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Sends `request` (a whole HTTP/1.1 request, bytes as given) and reads one response
// (Content-Length, chunked, or until the server closes), waiting up to `timeout_ms`.
HttpResponse HttpRaw(int port, const std::string& request, int timeout_ms = 10000);
// A well-formed request; `headers` as "Name: value" lines; Content-Length added for a body.
HttpResponse Http(int port, const std::string& method, const std::string& path,
                  const std::vector<std::string>& headers = {}, const std::string& body = "");

// One kept-alive connection: requests one after the other, each answer read whole
// (Content-Length bodies only).
class HttpConnection {
 public:
  explicit HttpConnection(int port);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  HttpResponse Send(const std::string& request, int timeout_ms = 10000);

 private:
  int fd_ = -1;
  std::string raw_;
};

// One server-sent event.
struct SseEvent {
  std::string id, event, data;
  bool ping = false;  // a ": ping" comment
};

// An open GET /api/watch (or any event stream), read as it arrives.
class SseStream {
 public:
  // Connects and sends the request; Open() reads the response head.
  SseStream(int port, const std::string& path, const std::vector<std::string>& headers);
  ~SseStream();
  SseStream(const SseStream&) = delete;
  SseStream& operator=(const SseStream&) = delete;
  // The response status (headers in response().headers; for an error, its body too).
  int Open(int timeout_ms = 5000);
  const HttpResponse& response() const { return head_; }
  // The next event or ping comment; false on timeout or the end of the stream
  // (ended() tells which).
  bool Next(SseEvent* event, int timeout_ms);
  bool ended() const { return ended_; }
  void Close();

 private:
  bool Fill(int timeout_ms);  // reads more body bytes (chunked decoded) into text_
  int fd_ = -1;
  std::string raw_;   // bytes read, not yet decoded
  std::string text_;  // decoded body, not yet parsed into events
  HttpResponse head_;
  bool ended_ = false;
};

}  // namespace whistle::testing
