// Text at the door: every string that enters the node (request fields, metadata,
// token claims, link payloads) is checked here before anything stores it, and
// every error message quotes caller input only through Quote().
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace whistle::core {

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Free text (notes, addresses, names): valid UTF-8, at most `max` bytes, and no
// control characters other than tab and newline. INVALID_ARGUMENT names `field`.
Status CheckText(std::string_view field, std::string_view value, size_t max);

// An identifier (user, request id, jurisdiction, department, case id): 1..`max`
// bytes of [A-Za-z0-9._:@-]. INVALID_ARGUMENT names `field`.
Status CheckId(std::string_view field, std::string_view value, size_t max);

// Caller input for an error message: at most 32 bytes (cut at a character
// boundary, "…" appended when cut), control and invalid bytes as \xNN, quoted.
std::string Quote(std::string_view value);

}  // namespace whistle::core
