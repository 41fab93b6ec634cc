// Unit tests for sink/retry_policy: outcome classification and the backoff schedule.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sink/retry_policy.hpp"

using tumbled::config::RetryConfig;
using tumbled::sink::Backoff;
using tumbled::sink::classify;
using tumbled::sink::parse_retry_after;
using tumbled::sink::Verdict;
using tumbled::sink::with_jitter;

namespace {

using std::chrono::milliseconds;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

RetryConfig settings(std::int64_t initial_ms, std::int64_t max_ms, std::int64_t max_retries = -1) {
  RetryConfig r;
  r.initial_backoff = milliseconds(initial_ms);
  r.max_backoff = milliseconds(max_ms);
  r.max_retries = max_retries;
  return r;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::success: return "success";
    case Verdict::retry: return "retry";
    case Verdict::split: return "split";
    case Verdict::reject: return "reject";
  }
  return "?";
}

}  // namespace

TEST_CASE("classify maps an HTTP status to a verdict", "[retry]") {
  const auto [status, expected] = GENERATE(table<int, Verdict>({
      {0, Verdict::retry},  // no response at all: network error or timeout
      {200, Verdict::success}, {204, Verdict::success},  // what InfluxDB answers to a good write
      {299, Verdict::success}, {100, Verdict::reject},
      {301, Verdict::reject},  {304, Verdict::reject},
      {400, Verdict::split},  // a point is malformed or conflicts: isolate it
      {401, Verdict::reject},  {403, Verdict::reject},
      {404, Verdict::reject},  // e.g. database not found
      {408, Verdict::retry},   // request timeout
      {413, Verdict::split},  {422, Verdict::reject},
      {429, Verdict::retry},  // too many requests
      {500, Verdict::retry},   {502, Verdict::retry},
      {503, Verdict::retry},   {504, Verdict::retry},
      {599, Verdict::retry},
  }));
  CAPTURE(status);
  CHECK(verdict_name(classify(status)) == std::string(verdict_name(expected)));
}

TEST_CASE("Backoff doubles from initial_backoff up to max_backoff", "[retry]") {
  Backoff backoff(settings(100, 1'000));
  CHECK(backoff.failures() == 0);
  const std::vector<std::int64_t> expected{100, 200, 400, 800, 1'000, 1'000, 1'000, 1'000};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(backoff.next_delay() == milliseconds(expected[i]));
    CHECK(backoff.failures() == i + 1);
  }
}

TEST_CASE("Backoff schedules for other settings", "[retry]") {
  const auto [initial, max, expected] =
      GENERATE(table<std::int64_t, std::int64_t, std::vector<std::int64_t>>({
          {100, 100, {100, 100, 100}},       // no room to grow
          {100, 250, {100, 200, 250, 250}},  // a cap that is not a power-of-two multiple
          {1, 16, {1, 2, 4, 8, 16, 16}},
          {300, 30'000, {300, 600, 1'200, 2'400, 4'800, 9'600, 19'200, 30'000, 30'000}},
      }));
  CAPTURE(initial, max);
  Backoff backoff(settings(initial, max));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(backoff.next_delay().count() == expected[i]);
  }
}

TEST_CASE("Backoff never overflows, however many attempts or however large the settings",
          "[retry]") {
  const auto [initial, max] = GENERATE(table<std::int64_t, std::int64_t>({
      {100, 1'000},
      {100, 30'000},
      {1, kMax},
      {1'000, kMax},
      {kMax / 4, kMax},
      {kMax / 2, kMax},
      {kMax / 2 + 1, kMax},
      {kMax - 1, kMax},
      {kMax, kMax},
      {3'000'000'000'000'000'000, 9'000'000'000'000'000'000},
      {5'000'000'000'000'000, kMax / 3},
  }));
  CAPTURE(initial, max);
  Backoff backoff(settings(initial, max));
  std::int64_t previous = 0;
  for (int attempt = 0; attempt < 200; ++attempt) {
    const std::int64_t delay = backoff.next_delay().count();
    if (delay < initial || delay > max || delay < previous) {
      CAPTURE(attempt, delay, previous);
      FAIL("delay outside [initial, max] or shrinking");
    }
    previous = delay;
  }
  CHECK(previous >= initial);
  if (max / 1024 <= initial) CHECK(previous == max);  // reachable caps are reached
  CHECK(backoff.failures() == 200);
}

TEST_CASE("Backoff stays at the cap after a very long outage", "[retry]") {
  Backoff backoff(settings(100, 30'000));
  for (int i = 0; i < 1'000'000; ++i) backoff.next_delay();
  CHECK(backoff.failures() == 1'000'000);
  CHECK(backoff.next_delay() == milliseconds(30'000));
}

TEST_CASE("Backoff::exhausted after max_retries retries", "[retry]") {
  const auto [max_retries, failures, exhausted] = GENERATE(table<std::int64_t, int, bool>({
      {0, 0, false},
      {0, 1, true},  // the first attempt failed and no retry is allowed
      {0, 2, true},
      {3, 0, false},
      {3, 1, false},
      {3, 3, false},
      {3, 4, true},  // first attempt + 3 retries all failed
      {3, 10, true},
      {-1, 0, false},
      {-1, 1, false},
      {-1, 10'000, false},  // never
      {-5, 10'000, false},
  }));
  CAPTURE(max_retries, failures);
  Backoff backoff(settings(100, 1'000, max_retries));
  for (int i = 0; i < failures; ++i) backoff.next_delay();
  CHECK(backoff.exhausted() == exhausted);
}

TEST_CASE("Backoff::reset starts the schedule over", "[retry]") {
  Backoff backoff(settings(100, 1'000, 2));
  for (int i = 0; i < 5; ++i) backoff.next_delay();
  CHECK(backoff.exhausted());
  backoff.reset();
  CHECK(backoff.failures() == 0);
  CHECK_FALSE(backoff.exhausted());
  CHECK(backoff.next_delay() == milliseconds(100));
  CHECK(backoff.next_delay() == milliseconds(200));
  CHECK(backoff.failures() == 2);
  CHECK_FALSE(backoff.exhausted());
  backoff.next_delay();
  CHECK(backoff.exhausted());
}

TEST_CASE("with_jitter spreads a delay over its upper half", "[retry]") {
  using std::chrono::milliseconds;
  CHECK(with_jitter(milliseconds(100), 0.0) == milliseconds(100 - 50));
  CHECK(with_jitter(milliseconds(100), 0.5) == milliseconds(75));
  CHECK(with_jitter(milliseconds(100), 0.999) <= milliseconds(100));
  CHECK(with_jitter(milliseconds(101), 0.0) == milliseconds(51));
  CHECK(with_jitter(milliseconds(0), 0.7) == milliseconds(0));
  CHECK(with_jitter(milliseconds(100), 7.0) == milliseconds(50));  // out of range: no jitter up
}

TEST_CASE("parse_retry_after reads delta-seconds only", "[retry]") {
  using std::chrono::milliseconds;
  CHECK(parse_retry_after("120") == milliseconds(120'000));
  CHECK(parse_retry_after(" 0 ") == milliseconds(0));
  CHECK(parse_retry_after("999999999") == milliseconds(3'600'000));  // capped at an hour
  CHECK_FALSE(parse_retry_after(""));
  CHECK_FALSE(parse_retry_after("-1"));
  CHECK_FALSE(parse_retry_after("1.5"));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK_FALSE(parse_retry_after("12345678901234567890"));
}
