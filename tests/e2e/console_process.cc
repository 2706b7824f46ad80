#include "tests/e2e/console_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/e2e/whistled_process.h"

#ifndef WHISTLE_CONSOLE_PATH
#error "WHISTLE_CONSOLE_PATH must name the whistle-console binary"
#endif

namespace whistle::testing {

namespace {

using Clock = std::chrono::steady_clock;

pid_t SpawnLogged(const std::vector<std::string>& args, const std::string& log_path) {
  // Built before fork: the child of a threaded process may only make async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* log = log_path.c_str();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Reads what is there within `timeout_ms`: >0 bytes appended, 0 closed, -1 timeout/error.
int ReadSome(int fd, std::string* out, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, std::max(timeout_ms, 0)) <= 0) return -1;
  char buf[65536];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  if (n < 0) return -1;
  out->append(buf, static_cast<size_t>(n));
  return static_cast<int>(n);
}

int Remaining(Clock::time_point until) {
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count());
}

// Parses a response head at the start of `raw` (through the blank line) and removes it.
bool ParseHead(std::string* raw, HttpResponse* out) {
  size_t end = raw->find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::istringstream lines(raw->substr(0, end));
  std::string line;
  std::getline(lines, line);
  if (line.size() >= 12 && line.rfind("HTTP/1.", 0) == 0)
    out->status = std::stoi(line.substr(9, 3));
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out->headers[name] = value;
  }
  raw->erase(0, end + 4);
  return true;
}

// Moves the complete chunks of `raw` into `out`; *done at the last (empty) chunk.
void DecodeChunks(std::string* raw, std::string* out, bool* done) {
  for (;;) {
    size_t eol = raw->find("\r\n");
    if (eol == std::string::npos) return;
    size_t size = std::stoul(raw->substr(0, eol), nullptr, 16);
    if (raw->size() < eol + 2 + size + 2) return;
    out->append(*raw, eol + 2, size);
    raw->erase(0, eol + 2 + size + 2);
    if (size == 0) {
      *done = true;
      return;
    }
  }
}

}  // namespace

ConsoleProcess::ConsoleProcess(const std::string& node_address,
                               std::vector<std::string> extra_flags) {
  static int serial = 0;
  log_path_ =
      (std::filesystem::temp_directory_path() /
       ("whistle-console-" + std::to_string(getpid()) + "-" + std::to_string(++serial) + ".log"))
          .string();
  for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
    port_ = FreePort();
    std::vector<std::string> args = {WHISTLE_CONSOLE_PATH, "--node", node_address, "--listen",
                                     "127.0.0.1:" + std::to_string(port_)};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    pid_ = SpawnLogged(args, log_path_);
    auto until = Clock::now() + std::chrono::seconds(10);
    bool up = false;
    while (Clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) break;  // exited: a port raced away?
      if (Http(port_, "GET", "/healthz").status == 200) {
        up = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!up) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
}

ConsoleProcess::~ConsoleProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::remove(log_path_.c_str());
}

int ConsoleProcess::Terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string ConsoleProcess::LogText() const { return ReadFile(log_path_); }

std::pair<int, std::string> RunConsole(const std::vector<std::string>& flags) {
  TempDir dir;
  std::string log = dir.path() + "/out.log";
  std::vector<std::string> args = {WHISTLE_CONSOLE_PATH};
  args.insert(args.end(), flags.begin(), flags.end());
  pid_t pid = SpawnLogged(args, log);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(log)};
}

HttpResponse HttpRaw(int port, const std::string& request, int timeout_ms) {
  HttpResponse out;
  int fd = Connect(port);
  if (fd < 0) return out;
  auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  // The server may answer (and close) before taking the whole request: not a failure.
  SendAll(fd, request);
  std::string raw;
  while (!ParseHead(&raw, &out)) {
    if (ReadSome(fd, &raw, Remaining(until)) <= 0) {
      close(fd);
      return out;
    }
  }
  bool head = request.rfind("HEAD ", 0) == 0;
  if (!head) {
    if (out.header("transfer-encoding") == "chunked") {
      bool done = false;
      DecodeChunks(&raw, &out.body, &done);
      while (!done && ReadSome(fd, &raw, Remaining(until)) > 0) {
        DecodeChunks(&raw, &out.body, &done);
      }
    } else if (!out.header("content-length").empty()) {
      size_t length = std::stoul(out.header("content-length"));
      while (raw.size() < length && ReadSome(fd, &raw, Remaining(until)) > 0) {
      }
      out.body = raw.substr(0, length);
    } else {
      while (ReadSome(fd, &raw, Remaining(until)) > 0) {
      }
      out.body = raw;
    }
  }
  close(fd);
  return out;
}

HttpResponse Http(int port, const std::string& method, const std::string& path,
                  const std::vector<std::string>& headers, const std::string& body) {
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : headers) request += h + "\r\n";
  if (!body.empty() || method == "POST") {
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "Connection: close\r\n\r\n" + body;
  return HttpRaw(port, request);
}

HttpConnection::HttpConnection(int port) : fd_(Connect(port)) {}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) close(fd_);
}

HttpResponse HttpConnection::Send(const std::string& request, int timeout_ms) {
  HttpResponse out;
  if (fd_ < 0 || !SendAll(fd_, request)) return out;
  auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!ParseHead(&raw_, &out)) {
    if (ReadSome(fd_, &raw_, Remaining(until)) <= 0) return out;
  }
  size_t length = std::stoul("0" + out.header("content-length"));
  while (raw_.size() < length && ReadSome(fd_, &raw_, Remaining(until)) > 0) {
  }
  out.body = raw_.substr(0, length);
  raw_.erase(0, std::min(length, raw_.size()));
  return out;
}

SseStream::SseStream(int port, const std::string& path, const std::vector<std::string>& headers) {
  fd_ = Connect(port);
  if (fd_ < 0) return;
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : headers) request += h + "\r\n";
  request += "Accept: text/event-stream\r\n\r\n";
  SendAll(fd_, request);
}

SseStream::~SseStream() { Close(); }

void SseStream::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

int SseStream::Open(int timeout_ms) {
  if (fd_ < 0) return 0;
  auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!ParseHead(&raw_, &head_)) {
    if (ReadSome(fd_, &raw_, Remaining(until)) <= 0) return 0;
  }
  if (head_.status != 200 && !head_.header("content-length").empty()) {
    size_t length = std::stoul(head_.header("content-length"));
    while (raw_.size() < length && ReadSome(fd_, &raw_, Remaining(until)) > 0) {
    }
    head_.body = raw_.substr(0, length);
    ended_ = true;
  }
  return head_.status;
}

bool SseStream::Fill(int timeout_ms) {
  if (ended_ || fd_ < 0) return false;
  int n = ReadSome(fd_, &raw_, timeout_ms);
  if (n == 0) ended_ = true;
  bool done = false;
  DecodeChunks(&raw_, &text_, &done);
  if (done) ended_ = true;
  return n > 0;
}

bool SseStream::Next(SseEvent* event, int timeout_ms) {
  auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    size_t end = text_.find("\n\n");
    if (end != std::string::npos) {
      std::string block = text_.substr(0, end);
      text_.erase(0, end + 2);
      SseEvent e;
      std::istringstream lines(block);
      bool any = false;
      for (std::string line; std::getline(lines, line);) {
        if (line == ": ping") e.ping = true;
        if (line.rfind("id: ", 0) == 0) e.id = line.substr(4);
        if (line.rfind("event: ", 0) == 0) e.event = line.substr(7);
        if (line.rfind("data: ", 0) == 0) e.data += line.substr(6);
        any = any || (!line.empty() && line[0] != ':') || e.ping;
      }
      if (!any) continue;  // another comment (": open")
      *event = e;
      return true;
    }
    if (ended_ || Remaining(until) <= 0) return false;
    Fill(Remaining(until));
  }
}

}  // namespace whistle::testing
