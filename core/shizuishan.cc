// The embedded default topology: Shizuishan (石嘴山市) with the seed's counts.
// Township names are real; community, village and grid names are generated.
#include <array>
#include <cstdio>
#include <string>

#include "core/topology.h"

namespace whistle::core {
namespace {

struct TownshipSpec {
  const char* name;        // e.g. "长胜街道"
  const char* short_name;  // e.g. "长胜", used for department names
  int urban;               // urban communities (社区) with urban grids
  int villages;            // villages (村) with rural grids
  int enterprises;         // enterprise units with enterprise grids
};

struct CountySpec {
  const char* id;
  const char* name;
  std::array<TownshipSpec, 14> townships;
  int township_count;
};

// 116 urban communities, 231 villages, 8 enterprise units: 355 in all.
const CountySpec kCounties[] = {
    {"dwk",
     "大武口区",
     {{{"长胜街道", "长胜", 8, 0, 0},
       {"朝阳街道", "朝阳", 9, 0, 0},
       {"人民路街道", "人民路", 8, 0, 0},
       {"青山街道", "青山", 7, 0, 0},
       {"石炭井街道", "石炭井", 4, 0, 0},
       {"白芨沟街道", "白芨沟", 3, 0, 0},
       {"沟口街道", "沟口", 3, 0, 0},
       {"长城街道", "长城", 7, 0, 2},
       {"锦林街道", "锦林", 6, 0, 0},
       {"长兴街道", "长兴", 6, 0, 1},
       {"星海镇", "星海", 2, 10, 0}}},
     11},
    {"hn",
     "惠农区",
     {{{"北街街道", "北街", 6, 0, 0},
       {"南街街道", "南街", 6, 0, 0},
       {"中街街道", "中街", 5, 0, 0},
       {"育才路街道", "育才路", 6, 0, 0},
       {"河滨街街道", "河滨街", 7, 0, 2},
       {"火车站街道", "火车站", 4, 0, 0},
       {"园艺镇", "园艺", 2, 10, 0},
       {"尾闸镇", "尾闸", 0, 12, 0},
       {"红果子镇", "红果子", 0, 9, 1},
       {"礼和乡", "礼和", 0, 8, 0},
       {"燕子墩乡", "燕子墩", 0, 7, 0}}},
     11},
    {"pl",
     "平罗县",
     {{{"城关镇", "城关", 17, 10, 1},
       {"黄渠桥镇", "黄渠桥", 0, 17, 0},
       {"宝丰镇", "宝丰", 0, 14, 0},
       {"头闸镇", "头闸", 0, 14, 0},
       {"姚伏镇", "姚伏", 0, 19, 0},
       {"崇岗镇", "崇岗", 0, 12, 1},
       {"陶乐镇", "陶乐", 0, 13, 0},
       {"高庄乡", "高庄", 0, 15, 0},
       {"灵沙乡", "灵沙", 0, 11, 0},
       {"渠口乡", "渠口", 0, 13, 0},
       {"通伏乡", "通伏", 0, 12, 0},
       {"高仁乡", "高仁", 0, 9, 0},
       {"红崖子乡", "红崖子", 0, 8, 0},
       {"前进农场", "前进", 0, 8, 0}}},
     14},
};

constexpr int kUrbanCommunities = 116;
constexpr int kVillages = 231;
constexpr int kEnterpriseUnits = 8;
constexpr int kUrbanGrids = 530;
constexpr int kRuralGrids = 1341;
constexpr int kEnterpriseGrids = 32;

struct DeptKind {
  const char* kind;
  const char* suffix;
};

// DOMAIN.md's county-level catalogue; the city has the same bureaus.
const DeptKind kCountyKinds[] = {
    {"public_security", "公安局"},
    {"justice", "司法局"},
    {"civil_affairs", "民政局"},
    {"human_resources", "人力资源和社会保障局"},
    {"market_regulation", "市场监督管理局"},
    {"housing_construction", "住房和城乡建设局"},
    {"urban_management", "城市管理综合执法局"},
    {"emergency_management", "应急管理局"},
    {"health", "卫生健康局"},
    {"ecology_environment", "生态环境局"},
    {"petitions", "信访局"},
    {"education", "教育局"},
    {"transport", "交通运输局"},
    {"natural_resources", "自然资源局"},
};

const DeptKind kTownshipKinds[] = {
    {"police_station", "派出所"},      {"judicial_office", "司法所"},
    {"governance_centre", "综治中心"}, {"market_supervision", "市场监管所"},
    {"urban_management", "城管中队"},  {"safety_supervision", "安监站"},
    {"health_centre", "卫生院"},       {"civil_affairs", "民政办"},
};

// Spreads `total` items evenly over `n` slots; slot k gets this many.
int Share(int total, int n, int k) {
  return static_cast<int>((static_cast<int64_t>(k + 1) * total) / n -
                          (static_cast<int64_t>(k) * total) / n);
}

std::string Numbered(const std::string& prefix, int n, int width) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%0*d", width, n);
  return prefix + buf;
}

void AddJurisdiction(v1::Topology& t, const std::string& id, const std::string& name,
                     v1::Level level, const std::string& parent,
                     v1::GridKind kind = v1::GRID_KIND_UNSPECIFIED) {
  auto* j = t.add_jurisdictions();
  j->set_id(id);
  j->set_name(name);
  j->set_level(level);
  j->set_parent_id(parent);
  j->set_grid_kind(kind);
}

void AddDepartment(v1::Topology& t, const std::string& jurisdiction, const std::string& name,
                   const DeptKind& kind) {
  auto* d = t.add_departments();
  d->set_id(jurisdiction + "-" + kind.kind);
  d->set_name(name + kind.suffix);
  d->set_kind(kind.kind);
  d->set_jurisdiction_id(jurisdiction);
}

// Running indexes over all communities of one kind, so grid counts sum exactly.
struct GridCounters {
  int urban = 0;
  int rural = 0;
  int enterprise = 0;
};

void AddCommunity(v1::Topology& t, const std::string& id, const std::string& name,
                  const std::string& parent, v1::GridKind kind, int grids) {
  AddJurisdiction(t, id, name, v1::LEVEL_COMMUNITY, parent);
  for (int g = 1; g <= grids; ++g) {
    AddJurisdiction(t, Numbered(id + "-g", g, 3), name + "第" + std::to_string(g) + "网格",
                    v1::LEVEL_GRID, id, kind);
  }
}

void AddTownship(v1::Topology& t, const std::string& id, const TownshipSpec& spec,
                 const std::string& county, GridCounters& counters) {
  AddJurisdiction(t, id, spec.name, v1::LEVEL_TOWNSHIP, county);
  int c = 0;
  for (int i = 1; i <= spec.urban; ++i) {
    AddCommunity(t, Numbered(id + "-c", ++c, 2),
                 std::string(spec.short_name) + "第" + std::to_string(i) + "社区", id,
                 v1::GRID_KIND_URBAN, Share(kUrbanGrids, kUrbanCommunities, counters.urban++));
  }
  for (int i = 1; i <= spec.villages; ++i) {
    AddCommunity(t, Numbered(id + "-c", ++c, 2),
                 std::string(spec.short_name) + "第" + std::to_string(i) + "村", id,
                 v1::GRID_KIND_RURAL, Share(kRuralGrids, kVillages, counters.rural++));
  }
  for (int i = 1; i <= spec.enterprises; ++i) {
    AddCommunity(t, Numbered(id + "-c", ++c, 2),
                 std::string(spec.short_name) + "企业网格单元" + std::to_string(i), id,
                 v1::GRID_KIND_ENTERPRISE,
                 Share(kEnterpriseGrids, kEnterpriseUnits, counters.enterprise++));
  }
  for (const auto& kind : kTownshipKinds) AddDepartment(t, id, spec.short_name, kind);
}

}  // namespace

v1::Topology ShizuishanTopology() {
  v1::Topology t;
  t.set_name("石嘴山市");
  AddJurisdiction(t, "szs", "石嘴山市", v1::LEVEL_CITY, "");
  for (const auto& kind : kCountyKinds) AddDepartment(t, "szs", "石嘴山市", kind);
  GridCounters counters;
  for (const auto& county : kCounties) {
    AddJurisdiction(t, county.id, county.name, v1::LEVEL_COUNTY, "szs");
    for (const auto& kind : kCountyKinds) AddDepartment(t, county.id, county.name, kind);
    for (int s = 0; s < county.township_count; ++s) {
      AddTownship(t, Numbered(std::string(county.id) + "-s", s + 1, 2), county.townships[s],
                  county.id, counters);
    }
  }
  return t;
}

}  // namespace whistle::core
