#include "sink/point_queue.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace tumbled::sink {

std::uint64_t PointQueue::push(std::string line, TimeMs now) {
  const std::uint64_t seq = next_seq_++;
  points_.push_back({seq, now, std::move(line)});
  return seq;
}

void PointQueue::restore(std::uint64_t seq, std::string line) {
  if (seq < next_seq_)
    throw std::logic_error("restored points must have increasing sequence numbers");
  points_.push_back({seq, std::numeric_limits<TimeMs>::min(), std::move(line)});
  next_seq_ = seq + 1;
  durable_through_ = seq;  // it came from the store
}

std::size_t PointQueue::sendable() const {
  // Sequence numbers increase along the queue, so the durable points form a prefix.
  const auto end = std::partition_point(points_.begin(), points_.end(), [&](const QueuedPoint& p) {
    return p.seq <= durable_through_;
  });
  return static_cast<std::size_t>(end - points_.begin());
}

std::optional<TimeMs> PointQueue::batch_due_at(std::size_t batch_size,
                                               TimeMs batch_interval) const {
  const std::size_t ready = sendable();
  if (ready == 0) return std::nullopt;
  if (ready >= batch_size) return std::numeric_limits<TimeMs>::min();
  const TimeMs queued_at = points_.front().queued_at;
  if (queued_at == std::numeric_limits<TimeMs>::min()) return queued_at;
  // Saturate rather than overflow when batch_interval is huge (config allows up to int64 ms).
  if (batch_interval > 0 && queued_at > std::numeric_limits<TimeMs>::max() - batch_interval) {
    return std::numeric_limits<TimeMs>::max();
  }
  return queued_at + batch_interval;
}

PointQueue::Batch PointQueue::front_batch(std::size_t batch_size) const {
  Batch batch;
  batch.points = std::min(batch_size, sendable());
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < batch.points; ++i) bytes += points_[i].line.size();
  batch.body.reserve(bytes);
  for (std::size_t i = 0; i < batch.points; ++i) {
    batch.body += points_[i].line;
    batch.last_seq = points_[i].seq;
  }
  return batch;
}

std::size_t PointQueue::batch_points(std::size_t at_least, std::size_t at_most,
                                     std::size_t max_bytes) const {
  const std::size_t limit = std::min(at_most, sendable());
  std::size_t points = std::min(at_least, limit);
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < points; ++i) bytes += points_[i].line.size();
  while (points < limit && bytes + points_[points].line.size() <= max_bytes) {
    bytes += points_[points].line.size();
    ++points;
  }
  return points;
}

void PointQueue::ack(std::size_t points) {
  if (points > sendable()) throw std::logic_error("acknowledging points that were never sendable");
  points_.erase(points_.begin(), points_.begin() + static_cast<std::ptrdiff_t>(points));
}

}  // namespace tumbled::sink

namespace tumbled::sink {

void PointQueue::ack_through(std::uint64_t last_seq) {
  while (!points_.empty() && points_.front().seq <= last_seq) points_.pop_front();
}

std::size_t PointQueue::remove(std::vector<std::uint64_t> seqs) {
  if (seqs.empty()) return 0;
  std::sort(seqs.begin(), seqs.end());
  const auto before = points_.size();
  points_.erase(std::remove_if(points_.begin(), points_.end(),
                               [&](const QueuedPoint& point) {
                                 return std::binary_search(seqs.begin(), seqs.end(), point.seq);
                               }),
                points_.end());
  return before - points_.size();
}

}  // namespace tumbled::sink
