// Raw key-value access to a column family, for the record kinds of storage/
// that live beside store.cc (directive_store.cc). Internal to storage/: never
// included from outside it, so RocksDB and key layouts stay behind storage/.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "storage/store.h"

namespace whistle::storage::internal {

enum class Family : uint8_t {
  kDirectives,  // column family "directives" (int64 merge operator: values add up)
  kMeta,        // column family "meta" (int64 merge operator; assessment rows "a/", "b/", "g/")
};

struct Raw {
  using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;

  static void Put(Batch& b, Family f, std::string key, std::string value);
  static void Delete(Batch& b, Family f, std::string key);
  // Merges an int64 delta into `key` (absent = 0).
  static void AddInt64(Batch& b, Family f, std::string key, int64_t delta);

  // NOT_FOUND when absent.
  static Status Get(const Store& store, Family f, std::string_view key, std::string* value);
  // Visits keys in [start, end) ("" end = no bound) until fn returns false.
  static Status Scan(const Store& store, Family f, std::string_view start, std::string_view end,
                     std::string_view what, const ScanFn& fn);
};

}  // namespace whistle::storage::internal
