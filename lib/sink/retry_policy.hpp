// Retry policy for InfluxDB writes: what an outcome means, and how long to wait before the next
// try.
//
// classify() maps a transport error or an HTTP status to success, retry (network errors, timeouts,
// 5xx, 408, 429) or reject (any other status: InfluxDB refuses this batch for good, so retrying
// would block the pipeline forever). Backoff doubles from initial_backoff up to max_backoff and is
// exhausted after max_retries retries (never, when max_retries < 0). Pure code.
#pragma once

#include <chrono>
#include <cstdint>

#include "config/config.hpp"

namespace tumbled::sink {

enum class Verdict { success, retry, reject };

// `status` is the HTTP status, or 0 when the exchange failed before a response arrived.
Verdict classify(int status);

class Backoff {
 public:
  explicit Backoff(const config::RetryConfig& settings) : settings_(settings) {}

  // Records a failed attempt; returns the delay before the next one.
  std::chrono::milliseconds next_delay();
  // True once max_retries retries have been used (never when max_retries < 0).
  bool exhausted() const {
    return settings_.max_retries >= 0 &&
           failures_ > static_cast<std::uint64_t>(settings_.max_retries);
  }
  std::uint64_t failures() const { return failures_; }
  void reset() { failures_ = 0; }

 private:
  config::RetryConfig settings_;
  std::uint64_t failures_ = 0;
};

}  // namespace tumbled::sink
