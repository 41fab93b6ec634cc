// Unit tests for sink/send_plan: every decision of the InfluxDB writer, without sockets or timers.
//
// Single steps are checked against tables; whole conversations run through Sim, which drives the
// plan over a real PointQueue the way BatchWriter does (next_send, front_batch, on_write,
// on_dead_letter, ack or wait), with InfluxDB and the dead-letter store scripted and the clock
// advanced by each pause instead of waited out.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "sink/point_queue.hpp"
#include "sink/send_plan.hpp"

using tumbled::sink::PointQueue;
using tumbled::sink::SendPlan;
using tumbled::sink::SinkCounters;
using tumbled::sink::TimeMs;
using tumbled::sink::WriteResult;

namespace {

using std::chrono::milliseconds;
using Action = SendPlan::Step::Action;
using Failing = SendPlan::Failing;
using Settings = tumbled::config::InfluxSinkConfig;

constexpr TimeMs kStart = 1'000'000;

// max_batch_size is batch_size here: batches never grow, unless a test says otherwise.
Settings settings(std::size_t batch_size, std::int64_t initial_ms = 100,
                  std::int64_t max_ms = 1'000, std::int64_t max_retries = -1) {
  Settings s;
  s.batch_size = batch_size;
  s.max_batch_size = batch_size;
  s.batch_interval = milliseconds(1'000);
  s.retry.initial_backoff = milliseconds(initial_ms);
  s.retry.max_backoff = milliseconds(max_ms);
  s.retry.max_retries = max_retries;
  return s;
}

PointQueue::Batch batch(std::size_t points, std::uint64_t last_seq) {
  return {"(body)", points, last_seq};
}

WriteResult answer(int status, std::string error = {},
                   std::optional<milliseconds> retry_after = std::nullopt) {
  return {status, std::move(error), retry_after, false};
}

std::string name(Action action) {
  switch (action) {
    case Action::ack: return "ack";
    case Action::split: return "split";
    case Action::retry: return "retry";
    case Action::dead_letter: return "dead_letter";
    case Action::drop: return "drop";
    case Action::keep: return "keep";
  }
  return "?";
}

std::string name(Failing failing) {
  switch (failing) {
    case Failing::quiet: return "quiet";
    case Failing::started: return "started";
    case Failing::still: return "still";
  }
  return "?";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void check_counters(const SinkCounters& c, std::uint64_t batches_written,
                    std::uint64_t points_written, std::uint64_t failed_attempts,
                    std::uint64_t batches_dead_lettered, std::uint64_t points_dead_lettered,
                    std::uint64_t batches_split) {
  CHECK(c.batches_written == batches_written);
  CHECK(c.points_written == points_written);
  CHECK(c.failed_attempts == failed_attempts);
  CHECK(c.batches_dead_lettered == batches_dead_lettered);
  CHECK(c.points_dead_lettered == points_dead_lettered);
  CHECK(c.batches_split == batches_split);
}

// "k" for a batch of point k alone, "first-last" for more.
std::string range(const PointQueue::Batch& b) {
  const auto first = b.last_seq + 1 - b.points;
  return b.points == 1 ? std::to_string(first)
                       : std::to_string(first) + "-" + std::to_string(b.last_seq);
}

// BatchWriter's loop without the I/O. Points are numbered by their sequence numbers, from 1.
struct Sim {
  Settings config;
  SendPlan plan;
  PointQueue queue;
  TimeMs now = kStart;
  double jitter = 0.0;
  // InfluxDB: the answer to a batch of the points first..last.
  std::function<WriteResult(std::uint64_t first, std::uint64_t last)> influx = [](auto, auto) {
    return answer(204);
  };
  std::deque<bool> store_answers;  // what the dead-letter store answers; true once empty
  std::vector<std::string> sent;   // every batch sent, as range()
  std::vector<std::string> dead;   // every batch stored as a dead letter
  std::vector<milliseconds> pauses;
  std::vector<SendPlan::Step> steps;  // the last step of every attempt

  explicit Sim(Settings s, std::size_t max_batch_bytes = tumbled::sink::kMaxBatchBytes)
      : config(std::move(s)), plan(config, max_batch_bytes) {}

  void push_durable(std::size_t n, const std::string& line = "p\n") {
    for (std::size_t i = 0; i < n; ++i) queue.push(line, now);
    queue.mark_durable_through(queue.next_seq() - 1);
  }

  // Sends while a batch is due, for at most `attempts` attempts.
  void run(std::size_t attempts = 1'000) {
    for (std::size_t i = 0; i < attempts; ++i) {
      const SendPlan::Next next = plan.next_send(queue, now);
      if (next.limit == 0) return;
      const PointQueue::Batch b = queue.front_batch(next.limit);
      sent.push_back(range(b));
      SendPlan::Step step =
          plan.on_write(b, influx(b.last_seq + 1 - b.points, b.last_seq), now, jitter);
      if (step.action == Action::dead_letter) {
        bool stored = true;
        if (!store_answers.empty()) {
          stored = store_answers.front();
          store_answers.pop_front();
        }
        if (stored) dead.push_back(range(b));
        step = plan.on_dead_letter(b, stored, now);
      }
      if (step.action == Action::ack || step.action == Action::drop) queue.ack_through(b.last_seq);
      if (step.action == Action::retry || step.action == Action::keep) {
        pauses.push_back(step.delay);
        now += step.delay.count();
      }
      steps.push_back(step);
    }
  }

  std::size_t count(bool SendPlan::Step::*flag) const {
    std::size_t n = 0;
    for (const auto& s : steps) n += s.*flag ? 1 : 0;
    return n;
  }
};

using Strings = std::vector<std::string>;

}  // namespace

// ---- What to send, and when --------------------------------------------------------------------

TEST_CASE("SendPlan::next_send: a full batch at once, a partial one after batch_interval",
          "[send_plan]") {
  // Four durable points: queued at kStart, kStart + 100, kStart + 200, kStart + 300.
  const auto [batch_size, max_batch_size, durable, now, limit, due_at] = GENERATE(
      table<std::size_t, std::size_t, std::uint64_t, TimeMs, std::size_t, std::optional<TimeMs>>({
          {4, 4, 4, kStart, 4, std::nullopt},              // batch_size waiting: due at once
          {4, 5'000, 4, kStart, 4, std::nullopt},          // ... all of them, no more
          {2, 2, 4, kStart, 2, std::nullopt},              // more than a batch: at most batch_size
          {2, 3, 4, kStart, 3, std::nullopt},              // ... or max_batch_size, if larger
          {2, 5'000, 4, kStart, 4, std::nullopt},          // ... every point that waits
          {8, 5'000, 4, kStart, 0, kStart + 1'000},        // partial: the oldest waits an interval
          {8, 5'000, 4, kStart + 999, 0, kStart + 1'000},  // ... not a millisecond less
          {8, 5'000, 4, kStart + 1'000, 4, std::nullopt},  // then it is due, all 4 of them
          {8, 5'000, 0, kStart + 5'000, 0, std::nullopt},  // nothing durable: nothing is ever due
          {4, 4, 3, kStart + 5'000, 3, std::nullopt},      // overdue, 3 durable
          {3, 5'000, 2, kStart, 0, kStart + 1'000},        // only durable points count
          {1, 5'000, 3, kStart, 3, std::nullopt},          // not the 4th: it is not durable
      }));
  CAPTURE(batch_size, max_batch_size, durable, now);
  Settings s = settings(batch_size);
  s.max_batch_size = max_batch_size;
  SendPlan plan(s);
  PointQueue queue;
  for (TimeMs at = kStart; at < kStart + 400; at += 100) queue.push("p\n", at);
  queue.mark_durable_through(durable);
  const SendPlan::Next next = plan.next_send(queue, now);
  CHECK(next.limit == limit);
  CHECK(next.due_at == due_at);
}

TEST_CASE("SendPlan::flush_all makes every sendable point due at once", "[send_plan]") {
  const Settings s = settings(4);
  SendPlan plan(s);
  PointQueue queue;
  queue.push("p\n", kStart);
  queue.push("p\n", kStart);  // not durable: stays behind even when flushing
  queue.mark_durable_through(1);

  CHECK(plan.next_send(queue, kStart).limit == 0);
  CHECK(plan.next_send(queue, kStart).due_at == kStart + 1'000);
  plan.flush_all();
  const SendPlan::Next next = plan.next_send(queue, kStart);
  CHECK(next.limit == 1);  // no waiting for a full batch
  CHECK_FALSE(next.due_at);
  CHECK(queue.front_batch(next.limit).points == 1);

  queue.ack(1);
  CHECK(plan.next_send(queue, kStart).limit == 0);  // the other point is still not durable
  CHECK_FALSE(plan.next_send(queue, kStart).due_at);
}

// ---- Draining a backlog in larger batches ------------------------------------------------------

TEST_CASE("SendPlan drains a backlog in batches of up to max_batch_size, fresh points as before",
          "[send_plan]") {
  Settings s = settings(100);
  s.max_batch_size = 5'000;
  Sim sim(s);
  sim.push_durable(12'000);
  sim.run();
  CHECK(sim.sent == Strings{"1-5000", "5001-10000", "10001-12000"});
  CHECK(sim.queue.empty());
  check_counters(sim.plan.counters(), 3, 12'000, 0, 0, 0, 0);

  // batch_size or fewer waiting: a batch when batch_size wait or after batch_interval, as always.
  sim.push_durable(99);
  CHECK(sim.plan.next_send(sim.queue, sim.now).limit == 0);
  sim.push_durable(1);
  sim.run();
  CHECK(sim.sent.back() == "12001-12100");
  sim.push_durable(30);
  sim.run();
  CHECK(sim.sent.size() == 4);
  CHECK(sim.plan.next_send(sim.queue, sim.now).due_at == sim.now + 1'000);
  sim.now += 1'000;
  sim.run();
  CHECK(sim.sent.back() == "12101-12130");
  // A few more than batch_size (they piled up during a write): one batch of them all.
  sim.push_durable(150);
  sim.run();
  CHECK(sim.sent.back() == "12131-12280");
  check_counters(sim.plan.counters(), 6, 12'280, 0, 0, 0, 0);
}

TEST_CASE("SendPlan retries a failed batch as part of a larger one once more points wait",
          "[send_plan]") {
  Settings s = settings(100, 100, 100);
  s.max_batch_size = 1'000;
  Sim sim(s);
  int answers = 0;
  sim.influx = [&](std::uint64_t, std::uint64_t) {
    return ++answers <= 2 ? answer(503) : answer(204);
  };
  sim.push_durable(100);
  sim.run(1);               // InfluxDB is away
  sim.push_durable(2'400);  // and points keep coming
  sim.run();
  // In order, nothing twice once acknowledged, the backlog in batches of max_batch_size.
  CHECK(sim.sent == Strings{"1-100", "1-1000", "1-1000", "1001-2000", "2001-2500"});
  CHECK(sim.pauses == std::vector<milliseconds>{milliseconds(50), milliseconds(50)});
  CHECK(sim.steps[2].recovered_after == 2);
  CHECK(sim.queue.empty());
  check_counters(sim.plan.counters(), 3, 2'500, 2, 0, 0, 0);
}

TEST_CASE("SendPlan grows a batch past batch_size only while its body fits max_batch_bytes",
          "[send_plan]") {
  const auto [batch_size, max_batch_size, max_bytes, line_bytes, points, sent] =
      GENERATE(table<std::size_t, std::size_t, std::size_t, std::size_t, std::size_t, Strings>({
          {2, 1'000, 45, 10, 10, {"1-4", "5-8", "9-10"}},  // 4 lines are 40 bytes, 5 would be 50
          {2, 1'000, 40, 10, 10, {"1-4", "5-8", "9-10"}},  // the bound itself is allowed
          {2, 1'000, 39, 10, 10, {"1-3", "4-6", "7-9"}},   // one byte less: 3 (the 10th waits)
          {2, 3, 45, 10, 10, {"1-3", "4-6", "7-9"}},       // max_batch_size still counts
          {2, 1'000, 1'000'000, 10, 10, {"1-10"}},         // the default bound: all of them
          // Points larger than the bound: batches of batch_size, never cut below it.
          {3, 1'000, 45, 50, 7, {"1-3", "4-6"}},
          {1, 1'000, 45, 50, 3, {"1", "2", "3"}},
      }));
  CAPTURE(batch_size, max_batch_size, max_bytes, line_bytes, points);
  Settings s = settings(batch_size);
  s.max_batch_size = max_batch_size;
  Sim sim(s, max_bytes);
  sim.push_durable(points, std::string(line_bytes - 1, 'x') + "\n");
  sim.run();
  CHECK(sim.sent == sent);
}

TEST_CASE("SendPlan splits a refused large batch as any other, then sends large batches again",
          "[send_plan]") {
  Settings s = settings(4, 10'000, 10'000);
  s.max_batch_size = 16;
  Sim sim(s);

  SECTION("400: the refused point is isolated") {
    sim.influx = [](std::uint64_t first, std::uint64_t last) {
      return first <= 11 && 11 <= last ? answer(400, "field type conflict") : answer(204);
    };
    sim.push_durable(16);
    sim.run();
    // 16 -> 8 + 8, the refused 8 -> 4 + 4 ..., then single points to the refused batch's end.
    CHECK(sim.sent == Strings{"1-16", "1-8", "9-16", "9-12", "9-10", "11-12", "11", "12", "13",
                              "14", "15", "16"});
    CHECK(sim.dead == Strings{"11"});
    check_counters(sim.plan.counters(), 7, 15, 5, 1, 1, 4);
  }
  SECTION("413: halved until the pieces fit") {
    sim.influx = [](std::uint64_t first, std::uint64_t last) {
      return last - first + 1 > 6 ? answer(413) : answer(204);
    };
    sim.push_durable(16);
    sim.run();
    CHECK(sim.sent == Strings{"1-16", "1-8", "1-4", "5-8", "9-12", "13-16"});
    CHECK(sim.dead.empty());
    check_counters(sim.plan.counters(), 4, 16, 2, 0, 0, 2);
    sim.influx = [](std::uint64_t, std::uint64_t) { return answer(204); };
  }
  CHECK(sim.pauses.empty());
  CHECK(sim.queue.empty());
  CHECK(sim.count(&SendPlan::Step::log_split_started) == 1);
  CHECK(sim.count(&SendPlan::Step::log_split_done) == 1);

  // The split is over: a backlog goes in batches of max_batch_size again.
  sim.push_durable(20);
  sim.run();
  CHECK(sim.sent.back() == "33-36");
  CHECK(sim.sent[sim.sent.size() - 2] == "17-32");
}

// ---- Success -----------------------------------------------------------------------------------

TEST_CASE("SendPlan acks a written batch and counts it", "[send_plan]") {
  const int status = GENERATE(200, 204, 299);
  CAPTURE(status);
  const Settings s = settings(4);
  SendPlan plan(s);
  // A failure first, so that success has something to clear.
  REQUIRE(name(plan.on_write(batch(3, 3), answer(503), kStart, 0.0).action) == "retry");
  CHECK(plan.counters().last_failure == "HTTP 503");

  const auto step = plan.on_write(batch(3, 3), answer(status), kStart + 50, 0.0);
  CHECK(name(step.action) == "ack");
  CHECK(step.recovered_after == 1);
  CHECK(name(step.log_failing) == "quiet");
  CHECK_FALSE(step.log_split_done);
  CHECK_FALSE(plan.in_retry_episode());
  CHECK(plan.counters().last_success_ms == kStart + 50);
  CHECK(plan.counters().last_failure.empty());
  check_counters(plan.counters(), 1, 3, 1, 0, 0, 0);

  // Without a failure before, nothing to recover from.
  const auto next = plan.on_write(batch(2, 5), answer(status), kStart + 60, 0.0);
  CHECK(name(next.action) == "ack");
  CHECK(next.recovered_after == 0);
  check_counters(plan.counters(), 2, 5, 1, 0, 0, 0);
}

TEST_CASE("SendPlan counts the duration of every write", "[send_plan]") {
  const Settings s = settings(4);
  SendPlan plan(s);
  plan.observe_write_seconds(0.002);
  plan.observe_write_seconds(7.0);
  CHECK(plan.counters().write_seconds.count == 2);
  CHECK(plan.counters().write_seconds.sum_seconds == Approx(7.002));
}

// ---- Retries -----------------------------------------------------------------------------------

TEST_CASE("SendPlan retries what may succeed later, with doubling, capped, jittered delays",
          "[send_plan]") {
  const auto [initial, max, jitter, expected] =
      GENERATE(table<std::int64_t, std::int64_t, double, std::vector<std::int64_t>>({
          // [d/2, d]: jitter 0 waits the lower half...
          {100, 1'000, 0.0, {50, 100, 200, 400, 500, 500}},
          // ... and halfway between.
          {100, 1'000, 0.5, {75, 150, 300, 600, 750, 750}},
          // Just below 1: just below the full delay.
          {100, 1'000, 0.999, {99, 199, 399, 799, 999, 999}},
          {20, 200, 0.0, {10, 20, 40, 80, 100, 100}},
          {400, 400, 0.25, {250, 250, 250}},
      }));
  const int status = GENERATE(0, 408, 429, 500, 502, 503, 504);
  CAPTURE(initial, max, jitter, status);
  const Settings s = settings(2, initial, max);
  SendPlan plan(s);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    const auto step = plan.on_write(batch(2, 2), answer(status, "boom"), kStart, jitter);
    CHECK(name(step.action) == "retry");
    CHECK(step.delay == milliseconds(expected[i]));
    CHECK(step.failures == i + 1);
    CHECK(step.reason.empty());
  }
  CHECK(plan.in_retry_episode());
  check_counters(plan.counters(), 0, 0, expected.size(), 0, 0, 0);
  CHECK(plan.counters().last_failure ==
        (status == 0 ? "boom" : "HTTP " + std::to_string(status) + ": boom"));
}

TEST_CASE("SendPlan waits at least as long as Retry-After asks, for that retry only",
          "[send_plan]") {
  const auto [retry_after, jitter, expected] = GENERATE(table<std::int64_t, double, std::int64_t>({
      {1'000, 0.0, 1'000},  // far longer than the backoff: the server's wish
      {1'000, 0.999, 1'000},
      {0, 0.0, 50},  // asks for less: the backoff (100 ms, jittered)
      {0, 0.5, 75},
      {60, 0.0, 60},  // between the jittered and the full backoff: a floor, not a cap
      {60, 0.5, 75},
      {100, 0.999, 100},
  }));
  CAPTURE(retry_after, jitter);
  const Settings s = settings(2, 100, 10'000);
  SendPlan plan(s);
  const auto step =
      plan.on_write(batch(2, 2), answer(503, "", milliseconds(retry_after)), kStart, jitter);
  CHECK(name(step.action) == "retry");
  CHECK(step.delay == milliseconds(expected));
  // The next retry is the backoff's again (200 ms, jittered), however long the server asked.
  const auto next = plan.on_write(batch(2, 2), answer(503), kStart, 0.0);
  CHECK(next.delay == milliseconds(100));
}

TEST_CASE("SendPlan logs a retry episode when it starts, every 30 s, and when it recovers",
          "[send_plan]") {
  const Settings s = settings(2, 100, 100);
  SendPlan plan(s);
  const auto fail_at = [&](TimeMs at) {
    return plan.on_write(batch(2, 2), answer(500, "{\"error\":\"internal\"}"), at, 0.0);
  };

  const auto first = fail_at(kStart);
  CHECK(name(first.log_failing) == "started");
  CHECK(first.failure == "HTTP 500: {\"error\":\"internal\"}");
  CHECK(name(fail_at(kStart + 100).log_failing) == "quiet");
  CHECK(name(fail_at(kStart + 29'999).log_failing) == "quiet");
  const auto reminder = fail_at(kStart + 30'000);
  CHECK(name(reminder.log_failing) == "still");
  CHECK(reminder.failures == 4);
  CHECK(reminder.delay == milliseconds(50));
  // The next reminder is 30 s after this one, not after the start.
  CHECK(name(fail_at(kStart + 59'999).log_failing) == "quiet");
  CHECK(name(fail_at(kStart + 60'000).log_failing) == "still");

  const auto recovered = plan.on_write(batch(2, 2), answer(204), kStart + 60'001, 0.0);
  CHECK(recovered.recovered_after == 6);
  CHECK_FALSE(plan.in_retry_episode());

  // A new episode is announced again and starts from initial_backoff.
  const auto again = fail_at(kStart + 60'002);
  CHECK(name(again.log_failing) == "started");
  CHECK(again.failures == 1);
  CHECK(again.delay == milliseconds(50));
}

TEST_CASE("SendPlan gives up after max_retries retries and dead-letters the batch", "[send_plan]") {
  const std::int64_t max_retries = GENERATE(0, 1, 3);
  CAPTURE(max_retries);
  const Settings s = settings(2, 10, 40, max_retries);
  SendPlan plan(s);
  for (std::int64_t i = 0; i < max_retries; ++i) {
    CHECK(name(plan.on_write(batch(2, 2), answer(500), kStart, 0.0).action) == "retry");
  }
  const auto step = plan.on_write(batch(2, 2), answer(500, "still broken"), kStart, 0.0);
  REQUIRE(name(step.action) == "dead_letter");
  CHECK(step.reason == "HTTP 500: still broken (gave up after " + std::to_string(max_retries + 1) +
                           " attempts: retry.max_retries)");
  CHECK(name(step.log_failing) == "quiet");  // nothing to say until the store answered

  const auto stored = plan.on_dead_letter(batch(2, 2), true, kStart);
  CHECK(name(stored.action) == "drop");
  CHECK(stored.reason == step.reason);
  CHECK(stored.log_dead_letter);
  CHECK(stored.recovered_after == 0);  // given up, not recovered
  CHECK(name(stored.log_failing) == "quiet");
  CHECK_FALSE(plan.in_retry_episode());
  CHECK(plan.counters().last_failure == "HTTP 500: still broken");
  check_counters(plan.counters(), 0, 0, max_retries + 1, 1, 2, 0);

  // The count starts over for the next batch.
  const auto next = plan.on_write(batch(2, 4), answer(500), kStart, 0.0);
  CHECK(name(next.action) == (max_retries == 0 ? "dead_letter" : "retry"));
  CHECK(next.failures == 1);
}

TEST_CASE("SendPlan never gives up when max_retries is negative", "[send_plan]") {
  const Settings s = settings(2, 10, 40, -1);
  SendPlan plan(s);
  for (int i = 0; i < 10'000; ++i) {
    if (name(plan.on_write(batch(2, 2), answer(503), kStart, 0.0).action) != "retry") {
      FAIL("attempt " << i + 1 << " was not retried");
    }
  }
  CHECK(plan.counters().failed_attempts == 10'000);
}

// ---- Rejections ---------------------------------------------------------------------------------

TEST_CASE("SendPlan dead-letters a rejected batch at once, with a hint", "[send_plan]") {
  const auto [status, api, hint] = GENERATE(table<int, std::string, std::string>({
      {401, "v1", "check sink.influxdb.username and password"},
      {403, "v1", "check sink.influxdb.username and password"},
      {401, "v2", "check sink.influxdb.token and its write permission on the bucket"},
      {403, "v2", "check sink.influxdb.token and its write permission on the bucket"},
      {404, "v1", "check that sink.influxdb.database exists (CREATE DATABASE) and the URL"},
      {404, "v2", "check that sink.influxdb.org and bucket exist and the URL"},
      {422, "v1", "InfluxDB will not accept this batch as it is"},
      {301, "v2", "InfluxDB will not accept this batch as it is"},
      {100, "v1", "InfluxDB will not accept this batch as it is"},
  }));
  CAPTURE(status, api);
  Settings s = settings(4, 10'000, 10'000);
  s.api = api;
  SendPlan plan(s);
  const auto step = plan.on_write(batch(4, 4), answer(status, "{\"error\":\"no\"}"), kStart, 0.0);
  REQUIRE(name(step.action) == "dead_letter");  // never split, never retried
  CHECK(step.reason == "HTTP " + std::to_string(status) + ": {\"error\":\"no\"} (" + hint + ")");
  CHECK(step.delay == milliseconds(0));
  CHECK_FALSE(plan.in_retry_episode());
  CHECK(plan.counters().last_failure == "HTTP " + std::to_string(status) + ": {\"error\":\"no\"}");

  const auto stored = plan.on_dead_letter(batch(4, 4), true, kStart);
  CHECK(name(stored.action) == "drop");
  CHECK(stored.reason == step.reason);
  CHECK(stored.log_dead_letter);
  check_counters(plan.counters(), 0, 0, 1, 1, 4, 0);
}

TEST_CASE("SendPlan keeps a batch the dead-letter store could not take", "[send_plan]") {
  SECTION("a rejected batch: kept for max_backoff, no retry episode") {
    const Settings s = settings(2, 10, 150);
    SendPlan plan(s);
    REQUIRE(name(plan.on_write(batch(2, 2), answer(401), kStart, 0.0).action) == "dead_letter");
    const auto kept = plan.on_dead_letter(batch(2, 2), false, kStart);
    CHECK(name(kept.action) == "keep");
    CHECK(kept.delay == milliseconds(150));
    CHECK(contains(kept.reason, "HTTP 401 (check sink.influxdb.username"));
    CHECK(name(kept.log_failing) == "quiet");
    CHECK_FALSE(kept.log_dead_letter);
    CHECK_FALSE(plan.in_retry_episode());
    check_counters(plan.counters(), 0, 0, 1, 0, 0, 0);

    // Tried again: refused again, and stored this time.
    REQUIRE(name(plan.on_write(batch(2, 2), answer(401), kStart, 0.0).action) == "dead_letter");
    CHECK(name(plan.on_dead_letter(batch(2, 2), true, kStart).action) == "drop");
    check_counters(plan.counters(), 0, 0, 2, 1, 2, 0);
  }
  SECTION("after max_retries: the retry episode goes on, at max_backoff") {
    const Settings s = settings(2, 10, 150, 0);
    SendPlan plan(s);
    REQUIRE(name(plan.on_write(batch(2, 2), answer(500), kStart, 0.0).action) == "dead_letter");
    const auto kept = plan.on_dead_letter(batch(2, 2), false, kStart);
    CHECK(name(kept.action) == "keep");
    CHECK(kept.delay == milliseconds(150));
    CHECK(name(kept.log_failing) == "started");
    CHECK(kept.failure == "HTTP 500");
    CHECK(kept.failures == 1);
    CHECK(plan.in_retry_episode());

    // Still exhausted: the next failure is given up at once too; a reminder after 30 s.
    REQUIRE(name(plan.on_write(batch(2, 2), answer(500), kStart + 150, 0.0).action) ==
            "dead_letter");
    CHECK(name(plan.on_dead_letter(batch(2, 2), false, kStart + 150).log_failing) == "quiet");
    REQUIRE(name(plan.on_write(batch(2, 2), answer(500), kStart + 30'000, 0.0).action) ==
            "dead_letter");
    const auto reminder = plan.on_dead_letter(batch(2, 2), false, kStart + 30'000);
    CHECK(name(reminder.log_failing) == "still");
    CHECK(reminder.failures == 3);

    // The store works again: dropped, and the episode is over without a recovery.
    REQUIRE(name(plan.on_write(batch(2, 2), answer(500), kStart + 30'150, 0.0).action) ==
            "dead_letter");
    const auto stored = plan.on_dead_letter(batch(2, 2), true, kStart + 30'150);
    CHECK(name(stored.action) == "drop");
    CHECK(contains(stored.reason, "gave up after 4 attempts"));
    CHECK_FALSE(plan.in_retry_episode());
    check_counters(plan.counters(), 0, 0, 4, 1, 2, 0);
  }
  SECTION("a success after a kept batch ends the retry episode as a recovery") {
    const Settings s = settings(2, 10, 150, 0);
    SendPlan plan(s);
    REQUIRE(name(plan.on_write(batch(2, 2), answer(500), kStart, 0.0).action) == "dead_letter");
    REQUIRE(name(plan.on_dead_letter(batch(2, 2), false, kStart).action) == "keep");
    const auto ok = plan.on_write(batch(2, 2), answer(204), kStart + 150, 0.0);
    CHECK(name(ok.action) == "ack");
    CHECK(ok.recovered_after == 1);
    check_counters(plan.counters(), 1, 2, 1, 0, 0, 0);
  }
}

TEST_CASE("SendPlan logs dead letters at most once per 30 s", "[send_plan]") {
  const Settings s = settings(1);
  SendPlan plan(s);
  const auto dead_letter_at = [&](TimeMs at, std::uint64_t seq) {
    REQUIRE(name(plan.on_write(batch(1, seq), answer(403), at, 0.0).action) == "dead_letter");
    return plan.on_dead_letter(batch(1, seq), true, at).log_dead_letter;
  };
  CHECK(dead_letter_at(kStart, 1));
  CHECK_FALSE(dead_letter_at(kStart, 2));
  CHECK_FALSE(dead_letter_at(kStart + 29'999, 3));
  CHECK(dead_letter_at(kStart + 30'000, 4));
  CHECK_FALSE(dead_letter_at(kStart + 59'999, 5));
  // A failing store is always reported, and is not a logged dead letter.
  REQUIRE(name(plan.on_write(batch(1, 6), answer(403), kStart + 60'000, 0.0).action) ==
          "dead_letter");
  CHECK_FALSE(plan.on_dead_letter(batch(1, 6), false, kStart + 60'000).log_dead_letter);
  CHECK(dead_letter_at(kStart + 60'000, 6));
  check_counters(plan.counters(), 0, 0, 7, 6, 6, 0);
}

// ---- Splitting batches refused with 400 or 413 -------------------------------------------------

TEST_CASE("SendPlan halves a refused batch and sends the pieces at once", "[send_plan]") {
  const int status = GENERATE(400, 413);
  CAPTURE(status);
  const Settings s = settings(8, 10'000, 10'000);
  SendPlan plan(s);
  PointQueue queue;
  for (int i = 0; i < 8; ++i) queue.push("p\n", kStart);
  queue.mark_durable_through(8);

  REQUIRE(plan.next_send(queue, kStart).limit == 8);
  const auto step = plan.on_write(batch(8, 8), answer(status, "too bad"), kStart, 0.0);
  CHECK(name(step.action) == "split");
  CHECK(step.log_split_started);
  CHECK(step.delay == milliseconds(0));
  CHECK(step.failure == "HTTP " + std::to_string(status) + ": too bad");
  CHECK(plan.next_send(queue, kStart).limit == 4);
  // About the points, not about InfluxDB being reachable: neither a retry nor a last_failure.
  CHECK_FALSE(plan.in_retry_episode());
  CHECK(plan.counters().last_failure.empty());

  // The first piece refused again: halved again, but the split was announced already.
  const auto again = plan.on_write(batch(4, 4), answer(status), kStart, 0.0);
  CHECK(name(again.action) == "split");
  CHECK_FALSE(again.log_split_started);
  CHECK(plan.next_send(queue, kStart).limit == 2);
  check_counters(plan.counters(), 0, 0, 2, 0, 0, 2);

  // Pieces are due at once even when fewer than batch_size points wait.
  queue.ack(7);
  const auto next = plan.next_send(queue, kStart);
  CHECK(next.limit == 2);
  CHECK_FALSE(next.due_at);
}

TEST_CASE("SendPlan's pieces are half the refused batch, rounded down", "[send_plan]") {
  const auto [batch_size, refused, piece] = GENERATE(table<std::size_t, std::size_t, std::size_t>({
      {8, 8, 4}, {5, 5, 2}, {3, 3, 1}, {2, 2, 1}, {100, 7, 3},  // a partial batch: half of what was
                                                                // sent, not of batch_size
  }));
  CAPTURE(batch_size, refused);
  const Settings s = settings(batch_size);
  SendPlan plan(s);
  PointQueue queue;
  for (std::size_t i = 0; i < refused; ++i) queue.push("p\n", kStart);
  queue.mark_durable_through(refused);
  REQUIRE(name(plan.on_write(batch(refused, refused), answer(400), kStart, 0.0).action) == "split");
  CHECK(plan.next_send(queue, kStart).limit == piece);
}

TEST_CASE("SendPlan dead-letters a single point refused with 400 or 413, with a hint",
          "[send_plan]") {
  const auto [status, hint] = GENERATE(table<int, std::string>({
      {400, "InfluxDB could not store these points (e.g. a field type conflict)"},
      {413, "raise InfluxDB's max-body-size or lower sink.influxdb.batch_size"},
  }));
  CAPTURE(status);
  const Settings s = settings(1);
  SendPlan plan(s);
  const auto step = plan.on_write(batch(1, 1), answer(status, "bad point"), kStart, 0.0);
  REQUIRE(name(step.action) == "dead_letter");
  CHECK(step.reason == "HTTP " + std::to_string(status) + ": bad point (" + hint + ")");
  CHECK_FALSE(step.log_split_started);
  CHECK(plan.counters().last_failure.empty());
  CHECK(name(plan.on_dead_letter(batch(1, 1), true, kStart).action) == "drop");
  check_counters(plan.counters(), 0, 0, 1, 1, 1, 0);
}

TEST_CASE("SendPlan isolates the point InfluxDB refuses, then returns to full batches",
          "[send_plan]") {
  Sim sim(settings(8, 10'000, 10'000));
  sim.influx = [](std::uint64_t first, std::uint64_t last) {
    return first <= 6 && 6 <= last ? answer(400, "field type conflict") : answer(204);
  };
  sim.push_durable(8);
  sim.run();

  // 8 -> 4 + 4, the refused 4 -> 2 + 2, the refused 2 -> 1 + 1; then single points to the end of
  // the refused batch.
  CHECK(sim.sent == Strings{"1-8", "1-4", "5-8", "5-6", "5", "6", "7", "8"});
  CHECK(sim.dead == Strings{"6"});
  CHECK(sim.pauses.empty());
  CHECK(sim.queue.empty());
  CHECK(sim.count(&SendPlan::Step::log_split_started) == 1);
  CHECK(sim.count(&SendPlan::Step::log_split_done) == 1);
  CHECK(sim.steps.back().log_split_done);  // point 8, the refused batch's last
  check_counters(sim.plan.counters(), 4, 7, 4, 1, 1, 3);

  // Full batches again: 7 points wait for the interval, the 8th makes a batch due.
  sim.push_durable(7);
  CHECK(sim.plan.next_send(sim.queue, sim.now).limit == 0);
  sim.push_durable(1);
  sim.run();
  CHECK(sim.sent.back() == "9-16");
  check_counters(sim.plan.counters(), 5, 15, 4, 1, 1, 3);
}

TEST_CASE("SendPlan splits down to single points and dead-letters each one refused",
          "[send_plan]") {
  Sim sim(settings(8, 10'000, 10'000));
  std::size_t max_points = 0;  // InfluxDB takes batches of at most this many points
  sim.influx = [&](std::uint64_t first, std::uint64_t last) {
    return last - first + 1 > max_points ? answer(413) : answer(204);
  };
  sim.push_durable(8);

  SECTION("pieces of two fit") {
    max_points = 2;
    sim.run();
    CHECK(sim.sent == Strings{"1-8", "1-4", "1-2", "3-4", "5-6", "7-8"});
    CHECK(sim.dead.empty());
    check_counters(sim.plan.counters(), 4, 8, 2, 0, 0, 2);
  }
  SECTION("not even one point fits") {
    max_points = 0;
    sim.run();
    CHECK(sim.sent == Strings{"1-8", "1-4", "1-2", "1", "2", "3", "4", "5", "6", "7", "8"});
    CHECK(sim.dead == Strings{"1", "2", "3", "4", "5", "6", "7", "8"});
    check_counters(sim.plan.counters(), 0, 0, 11, 8, 8, 3);
    CHECK(sim.steps.back().log_split_done);
  }
  CHECK(sim.pauses.empty());
  CHECK(sim.queue.empty());
  CHECK(sim.count(&SendPlan::Step::log_split_done) == 1);

  // The split is over: the next batch is full-sized.
  max_points = 100;
  sim.push_durable(8);
  sim.run();
  CHECK(sim.sent.back() == "9-16");
}

TEST_CASE("SendPlan keeps splitting after a piece is retried", "[send_plan]") {
  Sim sim(settings(4, 100, 100));
  int answers = 0;
  sim.influx = [&](std::uint64_t first, std::uint64_t last) {
    ++answers;
    if (answers == 2) return answer(503);  // the first piece, once
    return first <= 2 && 2 <= last ? answer(400) : answer(204);
  };
  sim.push_durable(4);
  sim.run();

  // Single points until the refused batch's last one is settled.
  CHECK(sim.sent == Strings{"1-4", "1-2", "1-2", "1", "2", "3", "4"});
  CHECK(sim.pauses == std::vector<milliseconds>{milliseconds(50)});
  CHECK(sim.dead == Strings{"2"});
  // The retry episode ends with the first success, the split with the refused batch's last point.
  CHECK(sim.steps[3].recovered_after == 1);
  CHECK(sim.steps.back().log_split_done);
  CHECK(sim.count(&SendPlan::Step::log_split_done) == 1);
  check_counters(sim.plan.counters(), 3, 3, 4, 1, 1, 2);
}

TEST_CASE("SendPlan returns to full batches when a piece runs out of retries", "[send_plan]") {
  Sim sim(settings(2, 10, 10, 0));
  int answers = 0;
  sim.influx = [&](std::uint64_t, std::uint64_t) {
    ++answers;
    return answers == 1 ? answer(400) : answers == 3 ? answer(500) : answer(204);
  };
  sim.push_durable(2);
  sim.run();
  CHECK(sim.sent == Strings{"1-2", "1", "2"});
  CHECK(sim.dead == Strings{"2"});
  CHECK(contains(sim.steps.back().reason, "gave up after 1 attempts"));
  CHECK(sim.steps.back().log_split_done);
  CHECK_FALSE(sim.plan.in_retry_episode());

  sim.push_durable(1);
  CHECK(sim.plan.next_send(sim.queue, sim.now).limit == 0);  // one point waits for a full batch
  sim.push_durable(1);
  sim.run();
  CHECK(sim.sent.back() == "3-4");
  check_counters(sim.plan.counters(), 2, 3, 2, 1, 1, 1);
}

TEST_CASE("SendPlan keeps a refused piece whose dead letter cannot be stored", "[send_plan]") {
  Sim sim(settings(2, 10, 150));
  sim.influx = [](std::uint64_t first, std::uint64_t last) {
    return first <= 1 && 1 <= last ? answer(400) : answer(204);
  };
  sim.store_answers = {false, true};
  sim.push_durable(2);
  sim.run();
  CHECK(sim.sent == Strings{"1-2", "1", "1", "2"});
  CHECK(sim.pauses == std::vector<milliseconds>{milliseconds(150)});
  CHECK(sim.dead == Strings{"1"});
  CHECK(sim.queue.empty());
  CHECK(sim.count(&SendPlan::Step::log_split_done) == 1);
  check_counters(sim.plan.counters(), 1, 1, 3, 1, 1, 1);
}
