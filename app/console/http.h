// Sending answers on a civetweb connection, every one with the same security
// headers, each answer in one write (civetweb's header functions write a line per
// send(): with Nagle and the client's delayed ACK that cost ~40 ms an answer on a
// kept-alive connection). Called on civetweb's worker threads.
#pragma once

#include <string>
#include <string_view>

#include "app/console/json_rpc.h"

struct mg_connection;

namespace whistle::console {

// The status line and the headers every answer carries (nosniff, the
// Content-Security-Policy, no framing, no referrer), without the blank line.
std::string ResponseHead(int status);
// A whole answer with Content-Type, Content-Length and `cache_control`; no body for
// HEAD. Returns reply.status.
int SendReply(mg_connection* conn, const HttpReply& reply, bool head = false,
              std::string_view cache_control = "no-store");
// One chunk of a chunked body in one write ("" ends the body); false when the
// client is gone.
bool SendChunk(mg_connection* conn, std::string_view data);

// The Content-Security-Policy of every answer: only this origin; no inline script.
inline constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

}  // namespace whistle::console
