// One peer of the link manager: its state across sessions and its metrics.
// Internal to link/.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <memory>
#include <string>

#include "link/link_manager.h"

namespace whistle::link {

struct PeerMetrics {
  prometheus::Gauge* connected = nullptr;
  prometheus::Counter* sent = nullptr;
  prometheus::Counter* received = nullptr;
  prometheus::Gauge* depth = nullptr;
  prometheus::Gauge* oldest = nullptr;
  prometheus::Counter* resends = nullptr;
  prometheus::Counter* reconnects = nullptr;
  prometheus::Histogram* rtt = nullptr;
};

struct LinkManager::Peer {
  std::string name;       // "parent" or the child's root
  std::string direction;  // up | down
  std::string node_id;
  std::string address;
  std::shared_ptr<Session> session;
  bool connected = false;
  int64_t since_ms = 0;
  int64_t last_ack_ms = 0;
  uint64_t acked = 0;
  uint64_t max_sent = 0;
  uint64_t sent = 0, received = 0, resends = 0, reconnects = 0, sessions = 0;
  uint64_t depth = 0;
  int64_t oldest_ms = 0;
  double rtt_ms = 0;
  std::string last_error;
  PeerMetrics metrics;
};

}  // namespace whistle::link
