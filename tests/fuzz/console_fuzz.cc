// Fuzz target for the leaders' console gateway's door (app/console): request
// paths, Authorization values, JSON bodies for every method it lets through, and
// the JSON it writes. The first byte picks the mode; the checks trap on violation:
//   0 path:   StaticFiles::Resolve over a small assets directory (with a symlink
//             leading out): what it serves is a regular file inside the directory;
//             a path holding a ".." segment, a control byte or a backslash is never
//             served; DecodePath's output is valid UTF-8 without control bytes.
//   1 token:  BearerToken accepts only "Bearer " + 1..8192 printable ASCII bytes,
//             and its refusals never quote the value.
//   2 body:   ParseRequest for the method the second byte picks: a parsed body
//             prints and parses back to the same message; a refusal is a 400
//             INVALID_ARGUMENT whose JSON is valid UTF-8.
//   3 escape: ErrorJson of any bytes is one JSON object with the code and the
//             message (parsed back), valid UTF-8, no raw control bytes.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "app/console/gateway.h"
#include "app/console/json_rpc.h"
#include "app/console/static_files.h"
#include "core/text.h"

namespace {

namespace fs = std::filesystem;
namespace pb = google::protobuf;
using whistle::console::StaticFiles;

void Require(bool ok) {
  if (!ok) __builtin_trap();
}

struct Assets {
  std::string root;
  StaticFiles* files;
};

// Made once, removed at exit (never destroyed before the atexit handler runs).
const Assets& TheAssets() {
  static const Assets* assets = [] {
    std::string tmpl = (fs::temp_directory_path() / "whistle-console-fuzz-XXXXXX").string();
    std::string root = fs::canonical(mkdtemp(tmpl.data())).string();
    fs::create_directories(root + "/assets/sub");
    std::ofstream(root + "/index.html") << "<!doctype html>";
    std::ofstream(root + "/assets/a.js") << "1";
    std::ofstream(root + "/assets/sub/b.css") << "1";
    std::ofstream(root + "/.env") << "SECRET";
    fs::create_symlink("/etc/hostname", root + "/assets/out.js");
    return new Assets{root, new StaticFiles(root)};
  }();
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(assets->root, ec);
    });
    return true;
  }();
  (void)cleanup;
  return *assets;
}

bool HasDotDotSegment(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

void Path(std::string_view raw) {
  auto decoded = StaticFiles::DecodePath(raw);
  if (decoded.ok()) {
    Require(whistle::core::IsValidUtf8(*decoded));
    for (unsigned char c : *decoded) Require(c >= 0x20 && c != 0x7F && c != '\\');
  }
  const Assets& a = TheAssets();
  auto file = a.files->Resolve(raw);
  if (!file.ok()) {
    Require(file.status().code() == whistle::Code::kInvalidArgument ||
            file.status().code() == whistle::Code::kNotFound);
    return;
  }
  Require(decoded.ok() && !HasDotDotSegment(*decoded));
  Require(file->path.rfind(a.root + "/", 0) == 0);
  Require(file->path.find("/.") == std::string::npos);
  std::error_code ec;
  Require(fs::is_regular_file(file->path, ec) && !fs::is_symlink(file->path, ec));
  Require(fs::canonical(file->path, ec).string() == file->path);
}

void Token(std::string_view data) {
  std::string value(data.substr(0, data.find('\0')));
  auto token = whistle::console::BearerToken(value.c_str());
  if (token.ok()) {
    Require(value.size() > 7 && strncasecmp(value.c_str(), "Bearer ", 7) == 0);
    Require(!token->empty() && token->size() <= whistle::console::kMaxToken);
    for (unsigned char c : *token) Require(c >= 0x21 && c <= 0x7E);
    return;
  }
  Require(token.status().code() == whistle::Code::kUnauthenticated);
  if (value.size() > 16) Require(token.status().message().find(value) == std::string::npos);
}

void Body(uint8_t pick, std::string_view json) {
  static const auto methods = whistle::console::AllowedMethods();
  Require(!methods.empty());
  const pb::MethodDescriptor* method = methods[pick % methods.size()];
  auto parsed = whistle::console::ParseRequest(method, json);
  if (parsed.message == nullptr) {
    Require(parsed.error.status == 400);
    Require(parsed.error.body.rfind("{\"code\":\"INVALID_ARGUMENT\",\"message\":\"", 0) == 0);
    Require(whistle::core::IsValidUtf8(parsed.error.body));
    return;
  }
  Require(parsed.message->GetDescriptor() == method->input_type());
  std::string printed;
  Require(pb::util::MessageToJsonString(*parsed.message, &printed).ok());
  auto again = whistle::console::ParseRequest(method, printed);
  Require(again.message != nullptr);
  Require(pb::util::MessageDifferencer::Equals(*parsed.message, *again.message));
}

void Escape(std::string_view data) {
  std::string json = whistle::console::ErrorJson("INVALID_ARGUMENT", data);
  Require(whistle::core::IsValidUtf8(json));
  for (unsigned char c : json) Require(c >= 0x20);
  pb::Struct parsed;
  Require(pb::util::JsonStringToMessage(json, &parsed).ok());
  Require(parsed.fields().at("code").string_value() == "INVALID_ARGUMENT");
  Require(parsed.fields().count("message") == 1);
  // Printable ASCII input (no escapes needed but for " and \) comes back as it was.
  bool plain = data.size() <= 1024;
  for (unsigned char c : data) plain = plain && c >= 0x20 && c < 0x7F;
  if (plain) Require(parsed.fields().at("message").string_value() == data);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 4) {
    case 0:
      Path(rest);
      break;
    case 1:
      Token(rest);
      break;
    case 2:
      Body(data[1], rest);
      break;
    case 3:
      Escape(rest);
      break;
  }
  return 0;
}
