#include "sink/retry_policy.hpp"

#include <algorithm>

namespace tumbled::sink {

Verdict classify(int status) {
  if (status >= 200 && status < 300) return Verdict::success;
  if (status == 0 || status >= 500 || status == 408 || status == 429) return Verdict::retry;
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
