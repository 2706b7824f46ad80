// RawGrpcCall: one unary gRPC call over a hand-written HTTP/2 connection
// (plaintext, prior knowledge), so a test can send bytes that gRPC's own
// client refuses to put on the wire: header values that are not UTF-8 or
// not printable, and request bodies that are not what the schema says.
//
// Headers go out as HPACK literals without indexing and without Huffman
// coding, exactly as given. The answer's headers are decoded (static and
// dynamic table, literals; Huffman-coded strings are kept undecoded, which
// gRPC does not use for grpc-status and grpc-message). One connection per
// call, so the dynamic table never has to evict. Test code only.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace whistle::testing {

struct RawResponse {
  bool answered = false;  // a final HEADERS (trailers) or RST_STREAM arrived
  int http_status = 0;
  int grpc_status = -1;      // -1 when the trailers had none
  std::string grpc_message;  // percent-decoded
  std::string body;          // gRPC message bytes (without the 5-byte prefix)
  bool reset = false;        // the server reset the stream
  uint32_t reset_code = 0;
  std::string error;          // what went wrong on the client side, if anything
  size_t received_bytes = 0;  // every byte the server sent on the connection
};

using RawHeaders = std::vector<std::pair<std::string, std::string>>;

// Calls `path` (e.g. "/whistle.v1.CaseService/Report") on 127.0.0.1:`port`
// with `metadata` (after the pseudo-headers, content-type and te) and
// `message` as the one request message.
RawResponse RawGrpcCall(int port, const std::string& path, const RawHeaders& metadata,
                        const std::string& message, int timeout_ms = 10000);

}  // namespace whistle::testing
