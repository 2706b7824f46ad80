// whistle_dump_config: prints the embedded default topology or policy as
// JSON, the source of config/shizuishan.json and config/policy.json.
//   whistle_dump_config topology > config/shizuishan.json
//   whistle_dump_config policy > config/policy.json
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "core/policy.h"
#include "core/topology.h"

namespace {

int Print(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    std::fprintf(stderr, "whistle_dump_config: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::fwrite(json.data(), 1, json.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "topology") == 0) {
    return Print(whistle::core::ShizuishanTopology());
  }
  if (argc == 2 && std::strcmp(argv[1], "policy") == 0) {
    return Print(whistle::core::DefaultPolicy());
  }
  std::fprintf(stderr, "usage: whistle_dump_config topology|policy\n");
  return 2;
}
