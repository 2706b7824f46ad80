// Structured logging: one JSON object per line on stderr, with a level.
// Thread-safe. Never log secrets (tokens, keys, report text).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace whistle {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

bool ParseLogLevel(std::string_view name, LogLevel* out);
void SetLogLevel(LogLevel level);
// True when a line at `level` would be written (to skip building costly fields).
bool LogEnabled(LogLevel level);

using LogField = std::pair<std::string_view, std::string>;
void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

}  // namespace whistle
