// Retry policy for InfluxDB writes: what an outcome means, and how long to wait before the next
// try.
//
// classify() maps a transport error or an HTTP status to success, retry (network errors, timeouts,
// 5xx, 408, 429), split (400: some point is unparsable or conflicts, InfluxDB may have written
// the others; 413: too large) — halve the batch until the refused points stand alone — or reject
// (401, 403, 404 and any other status: retrying would block the pipeline forever). Backoff
// doubles from initial_backoff up to max_backoff and is exhausted after max_retries retries
// (never, when max_retries < 0); with_jitter() spreads a delay over [d/2, d] so that many
// daemons failing together do not retry in lockstep. Pure code.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "config/config.hpp"

namespace tumbled::sink {

enum class Verdict { success, retry, split, reject };

// `status` is the HTTP status, or 0 when the exchange failed before a response arrived.
Verdict classify(int status);

// `delay` scaled into [delay/2, delay] by `unit`, a uniform random number in [0, 1).
std::chrono::milliseconds with_jitter(std::chrono::milliseconds delay, double unit);

// The delay a Retry-After header asks for ("120": seconds), capped at one hour; nullopt when the
// header is absent or not delta-seconds (the HTTP-date form is not used by InfluxDB).
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view header);

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
