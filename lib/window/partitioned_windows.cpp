#include "window/partitioned_windows.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace tumbled::window {

namespace {

constexpr TimeMs kMinTime = std::numeric_limits<TimeMs>::min();
constexpr std::string_view kMetadataTag = "tumbled/1";

bool read_number(std::string_view& text, std::int64_t& out) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (error != std::errc() || end == text.data()) return false;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return true;
}

}  // namespace

std::string ResumePoint::metadata() const {
  return std::string(kMetadataTag) + " " + std::to_string(watermark) + " " +
         std::to_string(newest_event) + " " + std::to_string(emit_from);
}

std::optional<ResumePoint> ResumePoint::from(Offset offset, std::string_view metadata) {
  if (offset < 0 || !metadata.starts_with(kMetadataTag)) return std::nullopt;
  metadata.remove_prefix(kMetadataTag.size());
  ResumePoint point{offset, 0, 0, 0};
  if (!read_number(metadata, point.watermark) || !read_number(metadata, point.newest_event) ||
      !read_number(metadata, point.emit_from) || !metadata.empty()) {
    return std::nullopt;
  }
  return point;
}

PartitionedWindows::PartitionedWindows(KeyedSettings settings, std::string partition_tag)
    : settings_(std::move(settings)), partition_tag_(std::move(partition_tag)) {}

KeyedSettings PartitionedWindows::settings_for(Partition partition) const {
  KeyedSettings settings = settings_;
  if (!partition_tag_.empty()) settings.tags[partition_tag_] = std::to_string(partition);
  return settings;
}

void PartitionedWindows::assign(Partition partition, Offset offset,
                                const std::optional<ResumePoint>& resume) {
  revoke(partition);
  State state{KeyedWindows(settings_for(partition)), offset, kMinTime, {}, {}};
  if (resume) {
    state.windows.restore_time(resume->watermark, resume->newest_event);
    state.emit_from = resume->emit_from;
  }
  partitions_.emplace(partition, std::move(state));
}

std::vector<std::uint64_t> PartitionedWindows::revoke(Partition partition) {
  const auto it = partitions_.find(partition);
  if (it == partitions_.end()) return {};
  const KeyedCounters& c = it->second.windows.counters();
  retired_.points_emitted += c.points_emitted;
  retired_.points_updated += c.points_updated;
  retired_.sums_saturated += c.sums_saturated;
  retired_.windows_dropped += c.windows_dropped;
  std::vector<std::uint64_t> unacked(it->second.unacked.begin(), it->second.unacked.end());
  partitions_.erase(it);
  return unacked;
}

std::vector<Partition> PartitionedWindows::partitions() const {
  std::vector<Partition> out;
  for (const auto& entry : partitions_) out.push_back(entry.first);
  return out;
}

source::Rejection PartitionedWindows::add(Partition partition, Offset offset,
                                          const source::ParsedLine& line, TimeMs now) {
  State& state = partitions_.at(partition);
  if (offset != state.record_offset) {  // the first line of a record: note the time before it
    state.record_offset = offset;
    state.record_watermark = state.windows.watermark();
    state.record_newest = state.windows.newest_event();
  }
  const source::Rejection rejection = state.windows.add(line, now);
  if (rejection == source::Rejection::none) {
    // The first record of a window has the lowest offset: records arrive in offset order.
    state.tracked.try_emplace(state.windows.last_start(),
                              Tracked{offset, state.record_watermark, state.record_newest});
  }
  return rejection;
}

void PartitionedWindows::consumed(Partition partition, Offset offset) {
  State& state = partitions_.at(partition);
  state.position = std::max(state.position, offset + 1);
}

void PartitionedWindows::advance(TimeMs now) {
  for (auto& entry : partitions_) entry.second.windows.advance(now);
}

void PartitionedWindows::not_idle(TimeMs now) {
  for (auto& entry : partitions_) entry.second.windows.not_idle(now);
}

std::size_t PartitionedWindows::emit(
    const std::function<std::uint64_t(std::string&& point)>& on_point) {
  std::size_t points = 0;
  for (auto& entry : partitions_) {
    State& state = entry.second;  // not a structured binding: clang 14 cannot capture one
    state.windows.emit_by_window([&](TimeMs start, std::string&& point) {
      if (start < state.emit_from) {
        ++counters_.points_suppressed;
        return;
      }
      const std::uint64_t seq = on_point(std::move(point));
      ++points;
      state.unacked.push_back(seq);
      if (const auto tracked = state.tracked.find(start); tracked != state.tracked.end()) {
        tracked->second.last_seq = seq;
      }
    });
    release_complete(state);
  }
  return points;
}

void PartitionedWindows::acknowledged_below(std::uint64_t seq) {
  acked_below_ = std::max(acked_below_, seq);
  for (auto& entry : partitions_) {
    State& state = entry.second;
    while (!state.unacked.empty() && state.unacked.front() < acked_below_) {
      state.unacked.pop_front();
    }
    release_complete(state);
  }
}

void PartitionedWindows::release_complete(State& state) {
  const std::optional<TimeMs> oldest_open = state.windows.oldest_open();
  while (!state.tracked.empty()) {
    const auto& [start, tracked] = *state.tracked.begin();
    const bool dropped = !oldest_open || start < *oldest_open;
    const bool acknowledged = tracked.last_seq == 0 || tracked.last_seq < acked_below_;
    if (!dropped || !acknowledged) break;
    state.emit_from = std::max(state.emit_from, start + settings_.size_ms);
    state.tracked.erase(state.tracked.begin());
  }
}

std::optional<ResumePoint> PartitionedWindows::resume_point(Partition partition) const {
  const auto it = partitions_.find(partition);
  if (it == partitions_.end()) return std::nullopt;
  const State& state = it->second;
  if (state.tracked.empty()) {
    if (state.position < 0) return std::nullopt;  // nothing read yet, from an unknown offset
    return ResumePoint{state.position, state.windows.watermark(), state.windows.newest_event(),
                       state.emit_from};
  }
  const auto oldest = std::min_element(
      state.tracked.begin(), state.tracked.end(),
      [](const auto& a, const auto& b) { return a.second.first_offset < b.second.first_offset; });
  const Tracked& t = oldest->second;
  return ResumePoint{t.first_offset, t.watermark_before, t.newest_before, state.emit_from};
}

std::map<Partition, ResumePoint> PartitionedWindows::resume_points() const {
  std::map<Partition, ResumePoint> out;
  for (const auto& entry : partitions_) {
    if (auto point = resume_point(entry.first)) out.emplace(entry.first, *point);
  }
  return out;
}

std::size_t PartitionedWindows::open_pairs() const {
  std::size_t n = 0;
  for (const auto& entry : partitions_) n += entry.second.windows.open_pairs();
  return n;
}

std::size_t PartitionedWindows::open_windows() const {
  std::size_t n = 0;
  for (const auto& entry : partitions_) n += entry.second.windows.open_windows();
  return n;
}

std::optional<TimeMs> PartitionedWindows::watermark() const {
  std::optional<TimeMs> lowest;
  for (const auto& entry : partitions_) {
    const TimeMs w = entry.second.windows.watermark();
    lowest = lowest ? std::min(*lowest, w) : w;
  }
  return lowest;
}

KeyedCounters PartitionedWindows::counters() const {
  KeyedCounters total = retired_;
  for (const auto& entry : partitions_) {
    const KeyedCounters& c = entry.second.windows.counters();
    total.points_emitted += c.points_emitted;
    total.points_updated += c.points_updated;
    total.sums_saturated += c.sums_saturated;
    total.windows_dropped += c.windows_dropped;
  }
  return total;
}

}  // namespace tumbled::window
