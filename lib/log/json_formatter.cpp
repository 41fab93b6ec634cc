// The spdlog side of log.format: json (see json_log.hpp).
#include <spdlog/formatter.h>

#include <chrono>
#include <string_view>

#include "log/json_log.hpp"

namespace tumbled::log {

namespace {

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        json_log_line(ms, std::string_view(level.data(), level.size()),
                      std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                      std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::unique_ptr<spdlog::formatter> json_formatter() {
  return std::make_unique<JsonFormatter>();
}

}  // namespace tumbled::log
