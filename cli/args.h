// Argument and display helpers shared by whistlectl's verb files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace whistle::cli {

using Args = std::vector<std::string>;

// Pulls "--name value" out of args; returns fallback when absent.
std::string Take(Args& args, const std::string& name, const std::string& fallback = "");
// Every "--name value" of a repeated flag, in order.
std::vector<std::string> TakeAll(Args& args, const std::string& name);
// Pulls a bare "--name" out of args; true when it was there.
bool TakeFlag(Args& args, const std::string& name);
// "CASE_STATE_IN_PROGRESS" with prefix "CASE_STATE_" -> "in_progress".
std::string Short(const std::string& enum_name, const std::string& prefix);
// Local time "YYYY-MM-DD HH:MM:SS" of a Unix time in ms; "-" for 0.
std::string Time(int64_t ms);

}  // namespace whistle::cli
