#include "sink/retry_policy.hpp"

#include <algorithm>

namespace tumbled::sink {

Verdict classify(int status) {
  if (status >= 200 && status < 300) return Verdict::success;
  if (status == 0 || status >= 500 || status == 408 || status == 429) return Verdict::retry;
  if (status == 400 || status == 413) return Verdict::split;
  return Verdict::reject;
}

std::chrono::milliseconds Backoff::next_delay() {
  const std::uint64_t doublings = std::min<std::uint64_t>(failures_, 40);
  ++failures_;
  const auto initial = settings_.initial_backoff.count();
  const auto cap = settings_.max_backoff.count();
  // Stop doubling once past the cap, and never double past it, so this can never overflow.
  std::int64_t delay = initial;
  for (std::uint64_t i = 0; i < doublings && delay < cap; ++i) {
    delay = delay > cap / 2 ? cap : delay * 2;
  }
  return std::chrono::milliseconds(std::min(delay, cap));
}

}  // namespace tumbled::sink

namespace tumbled::sink {

std::chrono::milliseconds with_jitter(std::chrono::milliseconds delay, double unit) {
  if (unit < 0 || unit >= 1) unit = 0;
  const auto half = delay.count() / 2;
  return std::chrono::milliseconds(delay.count() - half +
                                   static_cast<std::int64_t>(static_cast<double>(half) * unit));
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view header) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t'))
    header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t'))
    header.remove_suffix(1);
  if (header.empty() || header.size() > 9) return std::nullopt;
  std::int64_t seconds = 0;
  for (char c : header) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + (c - '0');
  }
  return std::chrono::milliseconds(std::min<std::int64_t>(seconds, 3600) * 1000);
}

}  // namespace tumbled::sink
