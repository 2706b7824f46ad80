// whistlectl watch and inbox: the WatchService stream and the InboxService
// lists. Kept apart from main.cc like directive_verbs; main.cc hands over the
// channel, identity and printer (VerbIo).
#pragma once

#include <string>
#include <vector>

#include "cli/directive_verbs.h"

namespace whistle::cli {

// `args` follow "watch". Prints changes as they arrive (a table line each,
// or one JSON object per line with `json`); runs until interrupted, --max
// changes or --for-ms. On a stream error prints it and the token to resume from.
int WatchVerb(const VerbIo& io, bool json, std::vector<std::string> args);
// `args` follow "inbox": "summoned" (a department's cases) or "reported".
int InboxVerb(const VerbIo& io, std::vector<std::string> args);
// `args` follow "notices": [JURISDICTION] and the page flags. The
// supervision notices (督办) to a level (default: the caller's), newest first.
int NoticesVerb(const VerbIo& io, std::vector<std::string> args);

}  // namespace whistle::cli
