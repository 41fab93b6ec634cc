#include "window/tumbling_windows.hpp"

#include <algorithm>
#include <stdexcept>

namespace tumbled::window {

void WindowAccumulator::merge(const WindowAccumulator& other) {
  sum += other.sum;
  count += other.count;
  if (other.min < min) min = other.min;
  if (other.max > max) max = other.max;
}

TumblingWindows::TumblingWindows(TimeMs size_ms) : size_(size_ms) {
  if (size_ms <= 0) throw std::invalid_argument("window size must be positive");
}

TimeMs TumblingWindows::start_of(TimeMs t) const {
  TimeMs start = t / size_ * size_;
  if (start > t) start -= size_;  // truncation went towards zero for negative t
  return start;
}

WindowAccumulator& TumblingWindows::accumulator_at(TimeMs now) {
  TimeMs start = start_of(now);
  if (start < closed_through_) start = closed_through_;  // clock stepped back: no re-opening
  return open_[start];
}

std::vector<ClosedWindow> TumblingWindows::close_due(TimeMs now) {
  std::vector<ClosedWindow> closed;
  while (!open_.empty()) {
    auto oldest = open_.begin();
    const TimeMs end = oldest->first + size_;
    if (end > now) break;
    if (!oldest->second.empty()) closed.push_back({oldest->first, end, oldest->second});
    if (end > closed_through_) closed_through_ = end;
    open_.erase(oldest);
  }
  // Windows that never saw a value still count as closed, so a late value cannot reopen them.
  const TimeMs current_start = start_of(now);
  if (current_start > closed_through_) closed_through_ = current_start;
  return closed;
}

std::optional<TimeMs> TumblingWindows::next_end() const {
  if (open_.empty()) return std::nullopt;
  return open_.begin()->first + size_;
}

void TumblingWindows::merge(const std::map<TimeMs, WindowAccumulator>& windows) {
  for (const auto& [start, totals] : windows) accumulator_at(start).merge(totals);
}

void TumblingWindows::restore(TimeMs start, const WindowAccumulator& totals) {
  open_[start_of(start)].merge(totals);
}

std::vector<sink::Field> window_fields(const WindowAccumulator& totals,
                                       const std::vector<Aggregate>& aggregates, bool& saturated) {
  constexpr auto int64_max = std::numeric_limits<std::int64_t>::max();
  constexpr auto int64_min = std::numeric_limits<std::int64_t>::min();
  const bool has_sum =
      std::find(aggregates.begin(), aggregates.end(), Aggregate::sum) != aggregates.end();
  saturated = has_sum && (totals.sum > int64_max || totals.sum < int64_min);
  std::vector<sink::Field> fields;
  for (Aggregate aggregate : aggregates) {
    switch (aggregate) {
      case Aggregate::sum: {
        std::int64_t sum = totals.sum > int64_max   ? int64_max
                           : totals.sum < int64_min ? int64_min
                                                    : static_cast<std::int64_t>(totals.sum);
        fields.push_back({"sum", sum});
        break;
      }
      case Aggregate::count: fields.push_back({"count", totals.count}); break;
      case Aggregate::min: fields.push_back({"min", totals.min}); break;
      case Aggregate::max: fields.push_back({"max", totals.max}); break;
      case Aggregate::mean:
        fields.push_back({"mean", static_cast<double>(static_cast<long double>(totals.sum) /
                                                      static_cast<long double>(totals.count))});
        break;
    }
  }
  if (saturated) fields.push_back({"sum_saturated", true});
  return fields;
}

}  // namespace tumbled::window
