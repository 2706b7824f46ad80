#include "cli/args.h"

#include <cctype>
#include <charconv>
#include <ctime>
#include <set>

namespace whistle::cli {

namespace {

// Every flag a verb asked for in this run (one verb per process), so Leftover
// tells a known flag missing its value from a flag the verb does not have.
std::set<std::string>& Asked() {
  static std::set<std::string> asked;
  return asked;
}

// Every single-valued flag found in this run: a second one left in args is
// "given twice", not a flag missing its value.
std::set<std::string>& Found() {
  static std::set<std::string> found;
  return found;
}

}  // namespace

std::string Take(Args& args, const std::string& name, const std::string& fallback) {
  Asked().insert(name);
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == name) {
      std::string v = args[i + 1];
      args.erase(args.begin() + i, args.begin() + i + 2);
      Found().insert(name);
      return v;
    }
  }
  return fallback;
}

std::vector<std::string> TakeAll(Args& args, const std::string& name) {
  std::vector<std::string> out;
  for (std::string v = Take(args, name); !v.empty(); v = Take(args, name)) out.push_back(v);
  Found().erase(name);  // repeatable: a leftover one lacks its value
  return out;
}

bool TakeFlag(Args& args, const std::string& name) {
  Asked().insert(name);
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name) {
      args.erase(args.begin() + i);
      Found().insert(name);
      return true;
    }
  }
  return false;
}

bool ParseNumber(const std::string& what, const std::string& text, int64_t min, int64_t max,
                 int64_t* out, std::string* why) {
  int64_t value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  // from_chars takes no '+' and no spaces; a '-' only where negatives are allowed.
  bool ok = !text.empty() && (min < 0 || text[0] != '-');
  if (ok) {
    auto [end, ec] = std::from_chars(first, last, value);
    ok = ec == std::errc() && end == last && value >= min && value <= max;
  }
  if (!ok) {
    // Quote at most 40 bytes of what was given: it goes to a terminal.
    std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
    for (char& ch : shown) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
    }
    *why = what + ": want a whole number from " + std::to_string(min) + " to " +
           std::to_string(max) + ", got \"" + shown + "\"";
    return false;
  }
  *out = value;
  return true;
}

bool TakeNumber(Args& args, const std::string& name, int64_t fallback, int64_t min, int64_t max,
                int64_t* out, std::string* why) {
  Asked().insert(name);
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == name) {
      std::string text = args[i + 1];
      args.erase(args.begin() + i, args.begin() + i + 2);
      Found().insert(name);
      return ParseNumber(name, text, min, max, out, why);
    }
  }
  *out = fallback;
  return true;
}

bool GivenTwice(const std::string& name) { return Found().count(name) != 0; }

bool Given(const std::string& name) { return Found().count(name) != 0; }

std::string Leftover(const std::string& verb, const Args& args) {
  if (args.empty()) return "";
  const std::string& first = args[0];
  if (first.size() > 1 && first[0] == '-') {
    if (GivenTwice(first)) return verb + ": " + first + " given twice";
    if (Asked().count(first) != 0) return verb + ": " + first + " needs a value";
    return verb + ": unknown flag " + first;
  }
  return verb + ": unexpected argument " + first;
}

std::string Short(const std::string& enum_name, const std::string& prefix) {
  std::string out = enum_name.rfind(prefix, 0) == 0 ? enum_name.substr(prefix.size()) : enum_name;
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string Time(int64_t ms) {
  if (ms == 0) return "-";
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string TimeHeader() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char zone[16];
  if (std::strftime(zone, sizeof(zone), "%Z", &tm) == 0) return "AT";
  return std::string("AT (") + zone + ")";
}
}  // namespace whistle::cli
