// whistlectl assess and rank: the AssessmentService. Kept apart from main.cc
// like directive_verbs; main.cc hands over the channel, identity and printer.
#pragma once

#include <string>
#include <vector>

#include "cli/directive_verbs.h"

namespace whistle::cli {

// `args` follow "assess": J | --department D, and the period flags.
int AssessVerb(const VerbIo& io, std::vector<std::string> args);
// `args` follow "rank": J --by FIGURE, and the period flags.
int RankVerb(const VerbIo& io, std::vector<std::string> args);

// The period flags' help text (shared by both rows of the verb table).
extern const char* const kPeriodHelp;

}  // namespace whistle::cli
