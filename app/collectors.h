// Collectors computed at scrape time: process figures from /proc and storage
// figures from the Store. Read-only; run on the exposer's thread.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>

#include "actors/node.h"

namespace whistle::app {

class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

class StorageCollector final : public prometheus::Collectable {
 public:
  explicit StorageCollector(const actors::Node& node) : node_(node) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const actors::Node& node_;
};

}  // namespace whistle::app
