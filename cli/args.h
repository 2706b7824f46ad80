// Argument and display helpers shared by whistlectl's verb files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace whistle::cli {

using Args = std::vector<std::string>;

// The nodes' bound on every paged list (page_size 1..500).
inline constexpr int64_t kMaxPageSize = 500;

// Pulls "--name value" out of args; returns fallback when absent.
std::string Take(Args& args, const std::string& name, const std::string& fallback = "");
// Every "--name value" of a repeated flag, in order.
std::vector<std::string> TakeAll(Args& args, const std::string& name);
// Pulls a bare "--name" out of args; true when it was there.
bool TakeFlag(Args& args, const std::string& name);

// The one number parser of whistlectl: `text` must be a whole decimal number in
// [min, max] (no sign unless min < 0, no spaces, units or overflow). Returns false
// and sets *why naming `what` (a flag or an argument) and the text otherwise,
// e.g. `--page-size: want a whole number from 1 to 500, got "10x"`.
bool ParseNumber(const std::string& what, const std::string& text, int64_t min, int64_t max,
                 int64_t* out, std::string* why);
// "--name N" pulled out of args and parsed as ParseNumber does; fallback when absent.
bool TakeNumber(Args& args, const std::string& name, int64_t fallback, int64_t min, int64_t max,
                int64_t* out, std::string* why);

// True when Take, TakeFlag or TakeNumber already took flag `name` in this run:
// one still in args was given twice (every flag but TakeAll's is single).
bool GivenTwice(const std::string& name);
// True when Take, TakeFlag or TakeNumber took flag `name` in this run, even with
// an empty value: `--at ""` is given (and must parse), not absent.
bool Given(const std::string& name);

// What a verb left in args after taking its flags and arguments, as an error
// naming the first leftover: "VERB: --x given twice" (a single flag repeated;
// the first is never silently preferred), "VERB: unknown flag --x", "VERB: --x
// needs a value" (a flag the verb took, given last without its value) or
// "VERB: unexpected argument x". Empty when nothing is left.
std::string Leftover(const std::string& verb, const Args& args);

// "CASE_STATE_IN_PROGRESS" with prefix "CASE_STATE_" -> "in_progress".
std::string Short(const std::string& enum_name, const std::string& prefix);
// Local time "YYYY-MM-DD HH:MM:SS" of a Unix time in ms; "-" for 0.
std::string Time(int64_t ms);
// The column header for such times, naming the zone: "AT (UTC)", "AT (CST)".
std::string TimeHeader();

}  // namespace whistle::cli
