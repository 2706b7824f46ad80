#include "app/console/http.h"

#include <civetweb.h>

#include <cstdio>

namespace whistle::console {

namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status < 500 ? "Error" : "Internal Server Error";
  }
}

bool WriteAll(mg_connection* conn, std::string_view bytes) {
  return bytes.empty() ||
         mg_write(conn, bytes.data(), bytes.size()) == static_cast<int>(bytes.size());
}

}  // namespace

std::string ResponseHead(int status) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  head += "X-Content-Type-Options: nosniff\r\n";
  head += std::string("Content-Security-Policy: ") + kContentSecurityPolicy + "\r\n";
  head += "X-Frame-Options: DENY\r\n";
  head += "Referrer-Policy: no-referrer\r\n";
  return head;
}

int SendReply(mg_connection* conn, const HttpReply& reply, bool head,
              std::string_view cache_control) {
  std::string out = ResponseHead(reply.status);
  out += "Content-Type: " + reply.content_type + "\r\n";
  out += "Cache-Control: " + std::string(cache_control) + "\r\n";
  out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
  if (reply.status == 503) out += "Retry-After: 5\r\n";
  if (!reply.allow.empty()) out += "Allow: " + reply.allow + "\r\n";
  out += "\r\n";
  if (!head) out += reply.body;
  WriteAll(conn, out);
  return reply.status;
}

bool SendChunk(mg_connection* conn, std::string_view data) {
  char size[24];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string out = size;
  out.append(data);
  out += "\r\n";
  return WriteAll(conn, out);
}

}  // namespace whistle::console
