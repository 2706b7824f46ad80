#include "core/topology.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <string>
#include <utility>

namespace whistle::core {
namespace {

constexpr size_t kMaxIdLength = 64;

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Jurisdiction ids: [a-z0-9-]; department ids also allow '_' (catalogue kinds
// are snake_case and end up in the id).
bool ValidId(std::string_view id, bool allow_underscore) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              (allow_underscore && c == '_');
    if (!ok) return false;
  }
  return true;
}

std::string Entry(std::string_view list, int index) {
  return std::string(list) + "[" + std::to_string(index) + "]";
}

// Collects the first text-format error so the message can carry line/column.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (!message_.empty()) return;
    message_ =
        "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

}  // namespace

// Shared with policy.cc: JSON when the text starts with '{', else text format.
Status ParseMessage(std::string_view text, std::string_view origin,
                    google::protobuf::Message* message) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(text.data(), text.size()), message, options);
    if (!status.ok()) {
      return Status::InvalidArgument(std::string(origin) + ": invalid JSON " +
                                     message->GetDescriptor()->name() + ": " +
                                     std::string(status.message()));
    }
    return Status::Ok();
  }
  google::protobuf::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), message)) {
    return Status::InvalidArgument(std::string(origin) + ": invalid text-format " +
                                   message->GetDescriptor()->name() + ": " + errors.message());
  }
  return Status::Ok();
}

StatusOr<v1::Topology> ParseTopology(std::string_view text, std::string_view origin) {
  v1::Topology topology;
  Status status = ParseMessage(text, origin, &topology);
  if (!status.ok()) return status;
  return topology;
}

StatusOr<std::shared_ptr<const Topology>> Topology::Build(v1::Topology config) {
  std::shared_ptr<Topology> topology(new Topology(std::move(config)));
  Status status = topology->Index();
  if (!status.ok()) return status;
  return std::shared_ptr<const Topology>(std::move(topology));
}

Status Topology::Index() {
  const int n = config_.jurisdictions_size();
  parent_.assign(n, -1);
  depth_.assign(n, -1);
  children_.assign(n, {});
  departments_.assign(n, {});
  grids_below_.assign(n, 0);

  for (int i = 0; i < n; ++i) {
    const auto& j = config_.jurisdictions(i);
    if (!ValidId(j.id(), false)) {
      return Status::InvalidArgument(Entry("jurisdictions", i) + ".id: " + Quote(j.id()) +
                                     " must be 1..64 characters of [a-z0-9-]");
    }
    if (!by_id_.emplace(j.id(), i).second) {
      return Status::InvalidArgument(Entry("jurisdictions", i) + ".id: duplicate id " +
                                     Quote(j.id()));
    }
    if (j.level() < v1::LEVEL_CITY || j.level() > v1::LEVEL_GRID) {
      return Status::InvalidArgument(Entry("jurisdictions", i) + ".level: required for " +
                                     Quote(j.id()));
    }
  }

  for (int i = 0; i < n; ++i) {
    const auto& j = config_.jurisdictions(i);
    if (j.parent_id().empty()) {
      if (root_ >= 0) {
        return Status::InvalidArgument(Entry("jurisdictions", i) + ".parent_id: " + Quote(j.id()) +
                                       " is a second root besides " +
                                       Quote(config_.jurisdictions(root_).id()));
      }
      root_ = i;
      continue;
    }
    auto it = by_id_.find(j.parent_id());
    if (it == by_id_.end()) {
      return Status::InvalidArgument(Entry("jurisdictions", i) + ".parent_id: unknown parent " +
                                     Quote(j.parent_id()) + " of " + Quote(j.id()));
    }
    parent_[i] = it->second;
    children_[it->second].push_back(i);
  }
  if (root_ < 0) {
    return Status::InvalidArgument("jurisdictions: no root (every entry has a parent_id)");
  }

  // Depth-first from the root; whatever stays unreached hangs on a cycle.
  std::vector<int> order;
  order.reserve(n);
  std::vector<int> stack = {root_};
  depth_[root_] = 0;
  while (!stack.empty()) {
    int i = stack.back();
    stack.pop_back();
    order.push_back(i);
    for (int c : children_[i]) {
      depth_[c] = depth_[i] + 1;
      stack.push_back(c);
    }
  }
  for (int i = 0; i < n; ++i) {
    if (depth_[i] < 0) {
      return Status::InvalidArgument(Entry("jurisdictions", i) + ".parent_id: " +
                                     Quote(config_.jurisdictions(i).id()) + " is part of a cycle");
    }
  }
  for (int i = 0; i < n; ++i) {
    if (parent_[i] < 0) continue;
    const auto& j = config_.jurisdictions(i);
    const auto& p = config_.jurisdictions(parent_[i]);
    if (j.level() != p.level() + 1) {
      return Status::InvalidArgument(Entry("jurisdictions", i) + ".level: " + Quote(j.id()) +
                                     " is " + v1::Level_Name(j.level()) + " but its parent " +
                                     Quote(p.id()) + " is " + v1::Level_Name(p.level()) +
                                     "; a child must be exactly one level below");
    }
  }
  // Children after parents in `order`, so a reverse sweep sums grids bottom-up.
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    int i = *it;
    if (config_.jurisdictions(i).level() == v1::LEVEL_GRID) grids_below_[i] += 1;
    if (parent_[i] >= 0) grids_below_[parent_[i]] += grids_below_[i];
  }

  for (int i = 0; i < config_.departments_size(); ++i) {
    const auto& d = config_.departments(i);
    if (!ValidId(d.id(), true)) {
      return Status::InvalidArgument(Entry("departments", i) + ".id: " + Quote(d.id()) +
                                     " must be 1..64 characters of [a-z0-9-_]");
    }
    if (!dept_by_id_.emplace(d.id(), i).second) {
      return Status::InvalidArgument(Entry("departments", i) + ".id: duplicate id " +
                                     Quote(d.id()));
    }
    auto it = by_id_.find(d.jurisdiction_id());
    if (it == by_id_.end()) {
      return Status::InvalidArgument(Entry("departments", i) +
                                     ".jurisdiction_id: unknown jurisdiction " +
                                     Quote(d.jurisdiction_id()) + " of " + Quote(d.id()));
    }
    departments_[it->second].push_back(i);
  }
  return Status::Ok();
}

const v1::Jurisdiction& Topology::root() const { return config_.jurisdictions(root_); }

const v1::Jurisdiction* Topology::Find(std::string_view id) const {
  const int i = IndexOf(id);
  return i < 0 ? nullptr : &config_.jurisdictions(i);
}

int Topology::IndexOf(std::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? -1 : it->second;
}

const v1::Department* Topology::FindDepartment(std::string_view id) const {
  auto it = dept_by_id_.find(id);
  return it == dept_by_id_.end() ? nullptr : &config_.departments(it->second);
}

const v1::Jurisdiction* Topology::Parent(std::string_view id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end() || parent_[it->second] < 0) return nullptr;
  return &config_.jurisdictions(parent_[it->second]);
}

bool Topology::IsWithin(std::string_view id, std::string_view ancestor) const {
  auto it = by_id_.find(id);
  auto at = by_id_.find(ancestor);
  if (it == by_id_.end() || at == by_id_.end()) return false;
  int i = it->second;
  // Climb to the ancestor's depth; the tree is at most five levels deep.
  while (i >= 0 && depth_[i] > depth_[at->second]) i = parent_[i];
  return i == at->second;
}

const v1::Jurisdiction* Topology::AncestorAt(std::string_view id, v1::Level level) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  for (int i = it->second; i >= 0; i = parent_[i]) {
    const auto& j = config_.jurisdictions(i);
    if (j.level() == level) return &j;
    if (j.level() < level) return nullptr;
  }
  return nullptr;
}

std::vector<const v1::Jurisdiction*> Topology::Path(std::string_view id) const {
  std::vector<const v1::Jurisdiction*> path;
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return path;
  for (int i = parent_[it->second]; i >= 0; i = parent_[i]) {
    path.insert(path.begin(), &config_.jurisdictions(i));
  }
  return path;
}

std::vector<const v1::Jurisdiction*> Topology::Children(std::string_view id) const {
  std::vector<const v1::Jurisdiction*> out;
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return out;
  for (int c : children_[it->second]) out.push_back(&config_.jurisdictions(c));
  return out;
}

std::vector<const v1::Department*> Topology::DepartmentsOf(std::string_view jurisdiction_id) const {
  std::vector<const v1::Department*> out;
  auto it = by_id_.find(std::string(jurisdiction_id));
  if (it == by_id_.end()) return out;
  for (int d : departments_[it->second]) out.push_back(&config_.departments(d));
  return out;
}

std::vector<const v1::Jurisdiction*> Topology::Subtree(std::string_view id) const {
  std::vector<const v1::Jurisdiction*> out;
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return out;
  std::vector<int> stack = {it->second};
  while (!stack.empty()) {
    int i = stack.back();
    stack.pop_back();
    out.push_back(&config_.jurisdictions(i));
    // Reverse push keeps children in config order (preorder, stable).
    for (auto c = children_[i].rbegin(); c != children_[i].rend(); ++c) stack.push_back(*c);
  }
  return out;
}

int64_t Topology::GridsBelow(std::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? 0 : grids_below_[it->second];
}

}  // namespace whistle::core
