// StaticFiles: the built page under --assets. A request path is checked strictly
// (percent-decoded once by us: no "..", no "%00" or other control bytes, no
// backslash, no hidden segments, valid UTF-8) and must resolve inside the
// directory after symlinks; unknown paths without a dot fall back to index.html
// (the page routes them). Read-only after construction; any thread.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace whistle::console {

struct StaticFile {
  std::string path;          // on disk, inside the assets directory
  std::string content_type;  // from the extension
  std::string cache_control;
};

class StaticFiles {
 public:
  // `root` "" = no page (every path NOT_FOUND).
  explicit StaticFiles(std::string root);

  // Checks the directory: it exists and holds index.html. INVALID_ARGUMENT naming --assets.
  Status Check() const;

  // The file for the raw (still percent-encoded) request path. INVALID_ARGUMENT for a
  // path that tries to leave the directory or does not decode; NOT_FOUND otherwise.
  StatusOr<StaticFile> Resolve(std::string_view raw_path) const;

  // Percent-decodes `raw` once, strictly: "%00", malformed escapes and invalid UTF-8
  // are INVALID_ARGUMENT. Exposed for tests.
  static StatusOr<std::string> DecodePath(std::string_view raw);

 private:
  std::string root_;  // canonical, no trailing slash
};

// Content-Type for a file name's extension (application/octet-stream when unknown).
std::string ContentTypeFor(std::string_view path);

}  // namespace whistle::console
