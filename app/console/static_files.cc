#include "app/console/static_files.h"

#include <filesystem>
#include <system_error>

#include "core/text.h"

namespace whistle::console {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxPath = 1024;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsRegularFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

StaticFiles::StaticFiles(std::string root) {
  if (root.empty()) return;
  std::error_code ec;
  fs::path canonical = fs::canonical(root, ec);
  root_ = ec ? root : canonical.string();
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Status StaticFiles::Check() const {
  if (root_.empty()) return Status::Ok();
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) {
    return Status::InvalidArgument("--assets: " + core::Quote(root_) + " is not a directory");
  }
  if (!IsRegularFile(fs::path(root_) / "index.html")) {
    return Status::InvalidArgument("--assets: no index.html in " + core::Quote(root_) +
                                   " (build the page: cd app/console/web && npm ci && npm run "
                                   "build)");
  }
  return Status::Ok();
}

StatusOr<std::string> StaticFiles::DecodePath(std::string_view raw) {
  if (raw.size() > kMaxPath) return Status::InvalidArgument("path: longer than 1024 bytes");
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return Status::InvalidArgument("path: a malformed percent escape");
      int hi = HexValue(raw[i + 1]);
      int lo = HexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) return Status::InvalidArgument("path: a malformed percent escape");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return Status::InvalidArgument("path: a control character");
    if (c == '\\') return Status::InvalidArgument("path: a backslash");
    out += c;
  }
  if (!core::IsValidUtf8(out)) return Status::InvalidArgument("path: not valid UTF-8");
  return out;
}

StatusOr<StaticFile> StaticFiles::Resolve(std::string_view raw_path) const {
  StatusOr<std::string> decoded = DecodePath(raw_path);
  if (!decoded.ok()) return decoded.status();
  const std::string& path = *decoded;
  if (path.empty() || path[0] != '/') return Status::InvalidArgument("path: must start with /");
  // Every segment: no "." or ".." and nothing hidden (".git", ".env").
  size_t start = 1;
  bool last_has_dot = false;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view segment(path.data() + start, end - start);
    if (!segment.empty() && segment[0] == '.') {
      return Status::InvalidArgument("path: a segment starting with '.' (\"..\" or a hidden file)");
    }
    if (end == path.size()) last_has_dot = segment.find('.') != std::string_view::npos;
    start = end + 1;
  }
  if (root_.empty()) return Status::NotFound("no page is served (whistle-console --assets)");

  std::string relative = path.substr(1);
  fs::path candidate = fs::path(root_) / relative;
  bool directory_like = relative.empty() || relative.back() == '/';
  if (!directory_like) {
    std::error_code ec;
    if (fs::is_directory(candidate, ec)) directory_like = true;
  }
  if (directory_like) candidate /= "index.html";
  if (!IsRegularFile(candidate)) {
    // A route of the page (/tree, /cases/x) rather than a file: the page itself.
    if (last_has_dot) return Status::NotFound("no such file");
    candidate = fs::path(root_) / "index.html";
    if (!IsRegularFile(candidate)) return Status::NotFound("no such file");
  }
  // Symlinks may not lead out of the directory.
  std::error_code ec;
  fs::path real = fs::canonical(candidate, ec);
  if (ec) return Status::NotFound("no such file");
  std::string real_str = real.string();
  if (real_str.compare(0, root_.size(), root_) != 0 ||
      (real_str.size() > root_.size() && real_str[root_.size()] != '/')) {
    return Status::NotFound("no such file");
  }
  StaticFile file;
  file.path = real_str;
  file.content_type = ContentTypeFor(real_str);
  // Vite names everything under assets/ by content hash: cache it for good; the
  // page itself is revalidated so a new build is picked up.
  bool hashed = real_str.compare(root_.size(), 8, "/assets/") == 0;
  file.cache_control = hashed ? "public, max-age=31536000, immutable" : "no-cache";
  return file;
}

std::string ContentTypeFor(std::string_view path) {
  struct Entry {
    const char* ext;
    const char* type;
  };
  static constexpr Entry kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".ttf", "font/ttf"},
      {".txt", "text/plain; charset=utf-8"},
      {".webmanifest", "application/manifest+json"},
      {".wasm", "application/wasm"},
  };
  size_t dot = path.rfind('.');
  size_t slash = path.rfind('/');
  if (dot != std::string_view::npos && (slash == std::string_view::npos || dot > slash)) {
    std::string_view ext = path.substr(dot);
    for (const Entry& e : kTypes) {
      if (ext == e.ext) return e.type;
    }
  }
  return "application/octet-stream";
}

}  // namespace whistle::console
