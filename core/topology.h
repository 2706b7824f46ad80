// Topology: the validated, indexed jurisdiction tree and its departments.
// Immutable after Build(); safe to read from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "whistle/v1/topology.pb.h"

namespace whistle::core {

class Topology {
 public:
  // Validates `config`: ids well formed and unique (jurisdictions and
  // departments), exactly one root, every parent known, no cycle, each child
  // exactly one level below its parent, departments hang off known
  // jurisdictions. The error names the offending entry.
  static StatusOr<std::shared_ptr<const Topology>> Build(v1::Topology config);

  const v1::Topology& config() const { return config_; }
  const v1::Jurisdiction& root() const;
  size_t jurisdiction_count() const { return config_.jurisdictions_size(); }

  // nullptr when unknown.
  const v1::Jurisdiction* Find(std::string_view id) const;
  // Position of a jurisdiction in config().jurisdictions(), -1 when unknown;
  // lets a caller walk the tree by position (ParentIndex) after one lookup.
  int IndexOf(std::string_view id) const;
  int ParentIndex(int index) const { return parent_[index]; }  // -1 for the root
  const v1::Jurisdiction& At(int index) const { return config_.jurisdictions(index); }
  const v1::Department* FindDepartment(std::string_view id) const;
  const v1::Jurisdiction* Parent(std::string_view id) const;

  // True when `id` is `ancestor` or lies below it.
  bool IsWithin(std::string_view id, std::string_view ancestor) const;
  // The ancestor-or-self of `id` at `level`; nullptr when `id` is above it.
  const v1::Jurisdiction* AncestorAt(std::string_view id, v1::Level level) const;
  // Ancestors of `id`, root first, `id` excluded.
  std::vector<const v1::Jurisdiction*> Path(std::string_view id) const;
  std::vector<const v1::Jurisdiction*> Children(std::string_view id) const;
  std::vector<const v1::Department*> DepartmentsOf(std::string_view jurisdiction_id) const;
  // `id` and everything below it, parents before children (stable order).
  std::vector<const v1::Jurisdiction*> Subtree(std::string_view id) const;
  int64_t GridsBelow(std::string_view id) const;

 private:
  explicit Topology(v1::Topology config) : config_(std::move(config)) {}
  Status Index();

  v1::Topology config_;
  int root_ = -1;
  // Looked up by string_view without building a string (transparent hash).
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  using IdIndex = std::unordered_map<std::string, int, IdHash, std::equal_to<>>;

  IdIndex by_id_;                              // index into config_.jurisdictions
  IdIndex dept_by_id_;                         // index into config_.departments
  std::vector<std::vector<int>> children_;     // by jurisdiction index
  std::vector<std::vector<int>> departments_;  // by jurisdiction index
  std::vector<int> parent_;                    // -1 for the root
  std::vector<int> depth_;
  std::vector<int64_t> grids_below_;
};

// Parses a Topology from JSON (first non-blank character '{') or protobuf
// text format. `origin` names the source in error messages.
StatusOr<v1::Topology> ParseTopology(std::string_view text, std::string_view origin);

// The parser behind ParseTopology and ParsePolicy, for any config message.
// JSON rejects unknown fields.
Status ParseMessage(std::string_view text, std::string_view origin,
                    google::protobuf::Message* message);

// The embedded default: Shizuishan city with the seed's counts (1 city,
// 3 county-level units, 36 townships/streets, 355 communities/villages,
// 1,903 grids: 530 urban, 1,341 rural, 32 enterprise) and departments at
// county and township level. Deterministic ids.
v1::Topology ShizuishanTopology();

}  // namespace whistle::core
