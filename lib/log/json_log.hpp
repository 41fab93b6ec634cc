// Log line formats. `log.format: text` is spdlog's pattern, set up in main. `log.format: json`
// writes one JSON object per line, for log shippers that parse rather than guess:
//
//   {"time":"2026-11-24T16:46:30.123Z","level":"warning","logger":"tcp","message":"…"}
//
// `time` is UTC with milliseconds; `level` is spdlog's name (trace, debug, info, warning, error,
// critical); `logger` the stage (main, tcp, window, influx, store, http). Every string is valid
// JSON whatever the message holds: quotes, backslashes and control characters are escaped, and
// bytes that are not UTF-8 become U+FFFD. json_log_line() is pure (tumbled_core);
// json_formatter() wraps it for spdlog (tumbled_io).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class formatter;
}

namespace tumbled::log {

// `text` as the body of a JSON string, without the surrounding quotes.
void append_json_string(std::string& out, std::string_view text);

// One whole line, '\n' included.
std::string json_log_line(std::int64_t unix_ms, std::string_view level, std::string_view logger,
                          std::string_view message);

// An spdlog formatter writing json_log_line()s; set it on the sink that every logger shares.
std::unique_ptr<spdlog::formatter> json_formatter();

}  // namespace tumbled::log
