#include "app/collectors.h"

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace whistle::app {

namespace {

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return {std::move(name), std::move(help), type, {metric}};
}

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Gauge, value);
}

prometheus::MetricFamily Counter(std::string name, std::string help, double value) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Counter, value);
}

// Fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss) of /proc/self/stat.
bool ReadStat(double* cpu_seconds, double* start_seconds, double* vsize, double* rss) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::vector<std::string> fields;
  while (rest >> field) fields.push_back(field);
  if (fields.size() < 22) return false;  // fields[0] is field 3 (state)
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  *cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
  double boot = 0;
  std::ifstream stat("/proc/stat");
  for (std::string l; std::getline(stat, l);) {
    if (l.rfind("btime ", 0) == 0) boot = std::stod(l.substr(6));
  }
  *start_seconds = boot + std::stod(fields[19]) / ticks;
  *vsize = std::stod(fields[20]);
  *rss = std::stod(fields[21]) * static_cast<double>(sysconf(_SC_PAGESIZE));
  return true;
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  double cpu = 0, start = 0, vsize = 0, rss = 0;
  if (ReadStat(&cpu, &start, &vsize, &rss)) {
    out.push_back(Counter("process_cpu_seconds_total", "User and system CPU time spent.", cpu));
    out.push_back(Gauge("process_start_time_seconds", "Start time since the epoch.", start));
    out.push_back(Gauge("process_virtual_memory_bytes", "Virtual memory size.", vsize));
    out.push_back(Gauge("process_resident_memory_bytes", "Resident memory size.", rss));
  }
  size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  out.push_back(Gauge("process_open_fds", "Open file descriptors.", static_cast<double>(fds)));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(Gauge("process_max_fds", "Maximum open file descriptors.",
                        static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

std::vector<prometheus::MetricFamily> StorageCollector::Collect() const {
  storage::StoreStats s = node_.StoreStats();
  std::vector<prometheus::MetricFamily> out;
  out.push_back(Counter("whistle_storage_commits_total",
                        "Transition batches made durable (acknowledged).",
                        static_cast<double>(s.commits)));
  out.push_back(Counter("whistle_storage_wal_syncs_total",
                        "Group writes to RocksDB, one WAL sync each.",
                        static_cast<double>(s.wal_syncs)));
  out.push_back(Counter("whistle_storage_unreadable_records_total",
                        "Distinct stored records found unreadable since start (a case or history "
                        "entry that does not parse, or an index entry naming a missing case); "
                        "each is logged once and skipped by listings, history and the timer.",
                        static_cast<double>(s.unreadable_records)));
  out.push_back(Counter("whistle_storage_background_errors_total",
                        "RocksDB background errors (failed flush, compaction or WAL write); each "
                        "is logged.",
                        static_cast<double>(s.background_errors)));
  out.push_back(Counter("whistle_storage_read_corruptions_total",
                        "Reads that met a damaged block or record (checksum mismatch): answered "
                        "DATA_LOSS and logged.",
                        static_cast<double>(s.read_corruptions)));
  out.push_back(Counter("whistle_storage_disk_full_refusals_total",
                        "Write batches refused with RESOURCE_EXHAUSTED because the disk is full.",
                        static_cast<double>(s.disk_full_refusals)));
  out.push_back(Gauge("whistle_storage_disk_full",
                      "1 while writes are refused because the data volume is full (reads work).",
                      s.disk_full ? 1 : 0));
  out.push_back(Gauge("whistle_storage_read_only",
                      "1 when the store was opened read-only because the disk was full at "
                      "start-up (writes need free space and a restart).",
                      s.read_only ? 1 : 0));
  out.push_back(Gauge("whistle_storage_data_loss_accepted",
                      "1 when this start accepted lost or damaged data (--accept-data-loss).",
                      s.damage_accepted ? 1 : 0));
  out.push_back(Gauge("whistle_storage_data_loss_writes",
                      "RocksDB writes acknowledged before but missing at this start (accepted "
                      "with --accept-data-loss).",
                      static_cast<double>(s.lost_writes)));
  out.push_back(Gauge("whistle_storage_data_loss_cases",
                      "Case ids of this node acknowledged before but missing at this start (at "
                      "most; accepted with --accept-data-loss). These ids are never reissued.",
                      static_cast<double>(s.lost_cases)));
  out.push_back(Counter("whistle_rocksdb_write_stall_seconds_total",
                        "Time writes were stalled or delayed by RocksDB.",
                        static_cast<double>(s.stall_micros) / 1e6));
  out.push_back(Gauge("whistle_rocksdb_pending_compaction_bytes",
                      "Estimated bytes compaction still has to rewrite.",
                      static_cast<double>(s.pending_compaction_bytes)));
  out.push_back(Gauge("whistle_rocksdb_live_sst_bytes", "Size of live SST files.",
                      static_cast<double>(s.live_sst_bytes)));
  out.push_back(Gauge("whistle_rocksdb_memtable_bytes", "Size of all memtables.",
                      static_cast<double>(s.memtable_bytes)));
  struct statvfs fs {};
  if (statvfs(node_.data_dir().c_str(), &fs) == 0) {
    out.push_back(Gauge("whistle_storage_disk_free_bytes",
                        "Free bytes on the volume holding the data directory.",
                        static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize)));
    out.push_back(Gauge("whistle_storage_disk_total_bytes",
                        "Size of the volume holding the data directory.",
                        static_cast<double>(fs.f_blocks) * static_cast<double>(fs.f_frsize)));
  }
  return out;
}

}  // namespace whistle::app
