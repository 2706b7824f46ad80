// whistlectl clock VERB: moves a test node's manual clock (whistled
// --test-clock-start-ms) through AdminService.SetClock / AdvanceClock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/directive_verbs.h"  // VerbIo

namespace whistle::cli {

// `args`: "set MS" or "advance DURATION".
int ClockVerb(const VerbIo& io, std::vector<std::string> args);

// "90s", "15m", "3h", "2d", "500ms" -> ms. False (and *why naming `what`) when
// it is not a whole number followed by one of those units, or overflows.
bool ParseDuration(const std::string& what, const std::string& text, int64_t* ms, std::string* why);

}  // namespace whistle::cli
