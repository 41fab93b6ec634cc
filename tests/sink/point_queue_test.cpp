// Unit tests for sink/point_queue: sequence numbers, durability gate, batching and acks.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sink/point_queue.hpp"

using tumbled::sink::PointQueue;
using tumbled::sink::TimeMs;

namespace {

// "Due at once": earlier than any clock reading the caller could compare it with.
bool due_immediately(const std::optional<TimeMs>& due) {
  return due.has_value() && *due <= std::numeric_limits<TimeMs>::min() / 2;
}

std::vector<std::uint64_t> seqs(const PointQueue& queue) {
  std::vector<std::uint64_t> out;
  for (const auto& p : queue.points()) out.push_back(p.seq);
  return out;
}

// Queue with points "a\n" @1000, "b\n" @1500, "c\n" @2000, "d\n" @2500 (seq 1..4).
PointQueue four_points() {
  PointQueue queue;
  queue.push("a\n", 1'000);
  queue.push("b\n", 1'500);
  queue.push("c\n", 2'000);
  queue.push("d\n", 2'500);
  return queue;
}

}  // namespace

TEST_CASE("PointQueue numbers points from 1 in push order", "[queue]") {
  PointQueue queue;
  CHECK(queue.empty());
  CHECK(queue.size() == 0);
  CHECK(queue.next_seq() == 1);
  CHECK(queue.acked_below() == 1);
  CHECK(queue.push("a\n", 10) == 1);
  CHECK(queue.push("b\n", 10) == 2);
  CHECK(queue.push("c\n", 5) == 3);  // a clock going back changes nothing here
  CHECK(queue.next_seq() == 4);
  CHECK(queue.size() == 3);
  CHECK_FALSE(queue.empty());
  CHECK(seqs(queue) == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(queue.points()[1].line == "b\n");
  CHECK(queue.points()[1].queued_at == 10);
  CHECK(queue.acked_below() == 1);
}

TEST_CASE("PointQueue sends nothing before it is durable", "[queue]") {
  PointQueue queue = four_points();
  CHECK(queue.sendable() == 0);
  CHECK(queue.batch_due_at(1, 0) == std::nullopt);
  CHECK(queue.batch_due_at(100, 1'000) == std::nullopt);
  const auto batch = queue.front_batch(10);
  CHECK(batch.points == 0);
  CHECK(batch.body.empty());
  CHECK_THROWS_AS(queue.ack(1), std::logic_error);

  const auto [durable_through, expected_sendable] = GENERATE(
      table<std::uint64_t, std::size_t>({{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {100, 4}}));
  queue.mark_durable_through(durable_through);
  CHECK(queue.sendable() == expected_sendable);
  CHECK(queue.front_batch(10).points == expected_sendable);
}

TEST_CASE("PointQueue::batch_due_at", "[queue]") {
  PointQueue queue = four_points();
  SECTION("table") {
    const auto [durable_through, batch_size, interval, expected] =
        GENERATE(table<std::uint64_t, std::size_t, TimeMs, std::optional<TimeMs>>({
            {0, 1, 500, std::nullopt},  // nothing sendable, however small the batch
            {0, 100, 500, std::nullopt},
            {1, 2, 500, TimeMs{1'500}},  // oldest sendable queued at 1000, + interval
            {1, 5, 0, TimeMs{1'000}},
            {3, 5, 100, TimeMs{1'100}},  // always the oldest, not the newest
            {4, 5, 60'000, TimeMs{61'000}},
        }));
    CAPTURE(durable_through, batch_size, interval);
    queue.mark_durable_through(durable_through);
    CHECK(queue.batch_due_at(batch_size, interval) == expected);
  }
  SECTION("immediately once batch_size points are sendable") {
    const auto [durable_through, batch_size] =
        GENERATE(table<std::uint64_t, std::size_t>({{1, 1}, {2, 2}, {3, 2}, {4, 4}, {4, 1}}));
    CAPTURE(durable_through, batch_size);
    queue.mark_durable_through(durable_through);
    CHECK(due_immediately(queue.batch_due_at(batch_size, 1'000'000)));
  }
  SECTION("undurable points do not count toward a full batch") {
    queue.mark_durable_through(1);
    CHECK(queue.batch_due_at(2, 500) == std::optional<TimeMs>(1'500));
    queue.mark_durable_through(2);
    CHECK(due_immediately(queue.batch_due_at(2, 500)));
  }
  SECTION("a huge interval saturates instead of wrapping into the past") {
    queue.mark_durable_through(1);
    constexpr TimeMs max = std::numeric_limits<TimeMs>::max();
    CHECK(queue.batch_due_at(10, max) == std::optional<TimeMs>(max));
    CHECK(queue.batch_due_at(10, max - 1'000) == std::optional<TimeMs>(max));
    CHECK(queue.batch_due_at(10, max - 1'001) == std::optional<TimeMs>(max - 1));
  }
  SECTION("after an ack the next oldest point sets the time") {
    queue.mark_durable_through(4);
    queue.ack(1);
    CHECK(queue.batch_due_at(10, 500) == std::optional<TimeMs>(2'000));
    queue.ack(2);
    CHECK(queue.batch_due_at(10, 500) == std::optional<TimeMs>(3'000));
    queue.ack(1);
    CHECK(queue.batch_due_at(10, 500) == std::nullopt);
  }
}

TEST_CASE("PointQueue::front_batch concatenates the oldest sendable points", "[queue]") {
  PointQueue queue = four_points();
  queue.push("e\n", 3'000);
  queue.mark_durable_through(4);  // "e" is not durable yet
  const auto [batch_size, body, points, last_seq] =
      GENERATE(table<std::size_t, std::string, std::size_t, std::uint64_t>({
          {1, "a\n", 1, 1},
          {2, "a\nb\n", 2, 2},
          {3, "a\nb\nc\n", 3, 3},
          {4, "a\nb\nc\nd\n", 4, 4},
          {5, "a\nb\nc\nd\n", 4, 4},
          {1'000, "a\nb\nc\nd\n", 4, 4},
      }));
  CAPTURE(batch_size);
  const auto batch = queue.front_batch(batch_size);
  CHECK(batch.body == body);
  CHECK(batch.points == points);
  CHECK(batch.last_seq == last_seq);
  CHECK(queue.size() == 5);  // front_batch does not consume
  CHECK(queue.front_batch(batch_size).body == body);
}

TEST_CASE("PointQueue::batch_points: at_least always, more only within max_bytes", "[queue]") {
  // Lines of 2, 4, 6, 8 and 10 bytes (seq 1..5); the 6th is not durable.
  PointQueue queue;
  for (std::size_t bytes = 2; bytes <= 12; bytes += 2) {
    queue.push(std::string(bytes - 1, 'x') + "\n", 1'000);
  }
  queue.mark_durable_through(5);
  const auto [at_least, at_most, max_bytes, points] =
      GENERATE(table<std::size_t, std::size_t, std::size_t, std::size_t>({
          {1, 1, 1'000, 1},    // at_most
          {1, 3, 1'000, 3},    // at_most
          {1, 100, 1'000, 5},  // every sendable point, not the 6th
          {1, 100, 12, 3},     // 2 + 4 + 6 = 12 bytes fit
          {1, 100, 11, 2},     // 2 + 4 fit, the third would make 12
          {1, 100, 0, 1},      // at_least is never cut
          {4, 100, 0, 4},      // ... however long the lines
          {4, 2, 0, 2},        // but at_most still bounds it
          {2, 100, 20, 4},     // 2 + 4, then 6 and 8 make 20
          {9, 100, 0, 5},      // no more than wait
          {0, 100, 0, 0},
      }));
  CAPTURE(at_least, at_most, max_bytes);
  CHECK(queue.batch_points(at_least, at_most, max_bytes) == points);
  std::size_t body = 0;
  for (std::size_t i = 0; i < points; ++i) body += queue.points()[i].line.size();
  CHECK(queue.front_batch(points).body.size() == body);
}

TEST_CASE("PointQueue::batch_points stops at a large point rather than skipping it", "[queue]") {
  PointQueue queue;
  queue.push("a\n", 0);
  queue.push(std::string(99, 'b') + "\n", 0);
  queue.push("c\n", 0);
  queue.mark_durable_through(3);
  CHECK(queue.batch_points(1, 10, 50) == 1);
  CHECK(queue.batch_points(2, 10, 50) == 2);
  CHECK(queue.batch_points(2, 10, 104) == 3);
}

TEST_CASE("PointQueue::ack removes points from the front", "[queue]") {
  PointQueue queue = four_points();
  queue.mark_durable_through(3);

  queue.ack(0);
  CHECK(queue.size() == 4);
  CHECK(queue.acked_below() == 1);

  queue.ack(2);
  CHECK(seqs(queue) == std::vector<std::uint64_t>{3, 4});
  CHECK(queue.acked_below() == 3);
  CHECK(queue.sendable() == 1);
  const auto batch = queue.front_batch(10);
  CHECK(batch.body == "c\n");
  CHECK(batch.last_seq == 3);

  SECTION("acking more than is sendable throws and changes nothing") {
    CHECK_THROWS_AS(queue.ack(2), std::logic_error);
    CHECK(seqs(queue) == std::vector<std::uint64_t>{3, 4});
    CHECK_THROWS_AS(queue.ack(100), std::logic_error);
    CHECK(queue.size() == 2);
  }
  SECTION("acking everything leaves acked_below at next_seq") {
    queue.mark_durable_through(4);
    queue.ack(2);
    CHECK(queue.empty());
    CHECK(queue.acked_below() == 5);
    CHECK(queue.next_seq() == 5);
    CHECK(queue.push("e\n", 1) == 5);  // numbering continues
    CHECK(queue.acked_below() == 5);
  }
}

TEST_CASE("PointQueue::restore replays points that are due at once", "[queue]") {
  PointQueue queue;
  queue.restore(5, "x\n");
  queue.restore(7, "y\n");  // gaps are fine
  CHECK(seqs(queue) == std::vector<std::uint64_t>{5, 7});
  CHECK(queue.next_seq() == 8);
  CHECK(queue.acked_below() == 5);
  CHECK(queue.sendable() == 2);  // they came from the store: durable
  CHECK(due_immediately(queue.batch_due_at(100, 1'000)));
  CHECK(due_immediately(queue.batch_due_at(1, 0)));

  CHECK(queue.push("z\n", 50) == 8);
  CHECK(queue.sendable() == 2);  // the new point waits for its checkpoint
  auto batch = queue.front_batch(10);
  CHECK(batch.body == "x\ny\n");
  CHECK(batch.points == 2);
  CHECK(batch.last_seq == 7);

  SECTION("sequence numbers must increase") {
    CHECK_THROWS_AS(queue.restore(8, "w\n"), std::logic_error);  // 8 was taken by push
    CHECK_THROWS_AS(queue.restore(3, "w\n"), std::logic_error);
    CHECK(queue.size() == 3);
  }
  SECTION("once the restored points are acked, the pushed one follows its own clock") {
    queue.ack(2);
    CHECK(queue.batch_due_at(100, 1'000) == std::nullopt);
    queue.mark_durable_through(8);
    CHECK(queue.batch_due_at(100, 1'000) == std::optional<TimeMs>(1'050));
    batch = queue.front_batch(10);
    CHECK(batch.body == "z\n");
    CHECK(batch.last_seq == 8);
  }
}

TEST_CASE("PointQueue::restore rejects a repeated sequence number", "[queue]") {
  PointQueue queue;
  queue.restore(1, "a\n");
  CHECK_THROWS_AS(queue.restore(1, "a\n"), std::logic_error);
  CHECK(queue.size() == 1);
}

TEST_CASE("PointQueue::remove takes points out wherever they wait, ack_through still settles",
          "[queue]") {
  PointQueue q;
  for (int i = 1; i <= 6; ++i) q.push("p" + std::to_string(i) + "\n", 0);
  q.mark_durable_through(6);
  const auto batch = q.front_batch(3);  // in flight: points 1-3
  CHECK(q.remove({5, 2, 9}) == 2);      // 9 is not there (acknowledged, or never pushed)
  CHECK(q.size() == 4);
  q.ack_through(batch.last_seq);  // the batch in flight is acknowledged
  REQUIRE(q.size() == 2);
  CHECK(q.points().front().seq == 4);
  CHECK(q.points().back().seq == 6);
  CHECK(q.remove({}) == 0);
}
