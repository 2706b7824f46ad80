// Flags: whistled's configuration from a JSON file (--config), the
// environment (WHISTLE_<FIELD>) and flags (--field-name), in that order of
// precedence (flags win). Every field of v1::NodeConfig is a flag.
#pragma once

#include <string>

#include "core/status.h"
#include "whistle/v1/config.pb.h"

namespace whistle::app {

// Defaults for every field (see config.proto).
v1::NodeConfig DefaultConfig();

// Parses argv and the environment over the defaults. Sets *help when --help
// was given. INVALID_ARGUMENT names the flag or variable at fault.
StatusOr<v1::NodeConfig> ParseFlags(int argc, char** argv, bool* help);

// Bounds and formats of every field; the error names the flag.
Status ValidateConfig(const v1::NodeConfig& config);

// The --help text: every flag, its variable, default and meaning.
std::string HelpText();

}  // namespace whistle::app
