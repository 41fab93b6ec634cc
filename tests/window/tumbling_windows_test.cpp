// Unit tests for window/tumbling_windows: window alignment, closing, late values, restore, fields.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "window/tumbling_windows.hpp"

using tumbled::config::Aggregate;
using tumbled::sink::Field;
using tumbled::window::ClosedWindow;
using tumbled::window::Int128;
using tumbled::window::TimeMs;
using tumbled::window::TumblingWindows;
using tumbled::window::window_fields;
using tumbled::window::WindowAccumulator;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

WindowAccumulator accumulate(const std::vector<std::int64_t>& values) {
  WindowAccumulator acc;
  for (std::int64_t v : values) acc.add(v);
  return acc;
}

// Catch cannot print __int128; compare it as a bool and show the value in 64-bit halves instead.
std::string int128_text(Int128 v) {
  const bool negative = v < 0;
  auto magnitude = static_cast<tumbled::window::UInt128>(negative ? -(v + 1) : v);
  if (negative) magnitude += 1;
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  } while (magnitude != 0);
  return negative ? "-" + digits : digits;
}

void check_totals(const WindowAccumulator& acc, Int128 sum, std::int64_t count, std::int64_t min,
                  std::int64_t max) {
  CAPTURE(int128_text(acc.sum), int128_text(sum));
  CHECK((acc.sum == sum));
  CHECK(acc.count == count);
  CHECK(acc.min == min);
  CHECK(acc.max == max);
}

std::vector<TimeMs> starts(const std::vector<ClosedWindow>& closed) {
  std::vector<TimeMs> out;
  for (const auto& w : closed) out.push_back(w.start);
  return out;
}

std::vector<TimeMs> open_starts(const TumblingWindows& windows) {
  std::vector<TimeMs> out;
  for (const auto& [start, totals] : windows.open_windows()) out.push_back(start);
  return out;
}

std::vector<std::string> names(const std::vector<Field>& fields) {
  std::vector<std::string> out;
  for (const auto& f : fields) out.push_back(f.name);
  return out;
}

std::int64_t int_field(const Field& f) {
  REQUIRE(std::holds_alternative<std::int64_t>(f.value));
  return std::get<std::int64_t>(f.value);
}

double double_field(const Field& f) {
  REQUIRE(std::holds_alternative<double>(f.value));
  return std::get<double>(f.value);
}

bool bool_field(const Field& f) {
  REQUIRE(std::holds_alternative<bool>(f.value));
  return std::get<bool>(f.value);
}

}  // namespace

TEST_CASE("TumblingWindows rejects a non-positive size", "[window]") {
  CHECK_THROWS_AS(TumblingWindows(0), std::invalid_argument);
  CHECK_THROWS_AS(TumblingWindows(-10), std::invalid_argument);
  CHECK_NOTHROW(TumblingWindows(1));
  CHECK(TumblingWindows(10'000).size() == 10'000);
}

TEST_CASE("start_of floors to the window start for any time", "[window]") {
  const auto [size, t, expected] = GENERATE(table<TimeMs, TimeMs, TimeMs>({
      {10, 0, 0},
      {10, 1, 0},
      {10, 9, 0},
      {10, 10, 10},  // t = k*size starts a window
      {10, 11, 10},
      {10, 19, 10},  // t = k*size - 1 belongs to the previous one
      {10, 20, 20},
      {10, -1, -10},
      {10, -9, -10},
      {10, -10, -10},
      {10, -11, -20},
      {10, -19, -20},
      {10, -20, -20},
      {10, -21, -30},
      {7, 6, 0},
      {7, 7, 7},
      {7, 13, 7},
      {7, 14, 14},
      {7, -1, -7},
      {7, -7, -7},
      {7, -8, -14},
      {1, -5, -5},
      {1, 0, 0},
      {1, kMax, kMax},
      {1, kMin, kMin},
      {10'000, 1'700'000'000'000, 1'700'000'000'000},
      {10'000, 1'700'000'009'999, 1'700'000'000'000},
      {10'000, 1'700'000'010'000, 1'700'000'010'000},
      {10'000, 1'699'999'999'999, 1'699'999'990'000},
      {3'600'000, 1'700'000'000'000, 1'699'999'200'000},
      {10'000, -1'700'000'000'001, -1'700'000'010'000},
  }));
  CAPTURE(size, t);
  const TumblingWindows windows(size);
  CHECK(windows.start_of(t) == expected);
}

TEST_CASE("close_due emits due windows oldest first with exact totals", "[window]") {
  TumblingWindows windows(10);
  CHECK(windows.next_end() == std::nullopt);
  CHECK(windows.close_due(1'000).empty());

  windows.add(1'001, 5);
  windows.add(1'009, 7);
  windows.add(1'010, 100);  // exactly on a boundary: the next window
  windows.add(1'025, -3);
  windows.add(1'009, -1);  // back into the first window, still open
  CHECK(open_starts(windows) == std::vector<TimeMs>{1'000, 1'010, 1'020});
  CHECK(windows.next_end() == std::optional<TimeMs>(1'010));

  CHECK(windows.close_due(1'009).empty());  // end 1010 > now
  CHECK(windows.next_end() == std::optional<TimeMs>(1'010));

  auto closed = windows.close_due(1'010);  // end == now: due
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].start == 1'000);
  CHECK(closed[0].end == 1'010);
  check_totals(closed[0].totals, 11, 3, -1, 7);
  CHECK(windows.next_end() == std::optional<TimeMs>(1'020));

  CHECK(windows.close_due(1'010).empty());  // each window comes out once

  closed = windows.close_due(1'029);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].start == 1'010);
  CHECK(closed[0].end == 1'020);
  check_totals(closed[0].totals, 100, 1, 100, 100);

  closed = windows.close_due(1'030);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].start == 1'020);
  check_totals(closed[0].totals, -3, 1, -3, -3);
  CHECK(windows.open_windows().empty());
  CHECK(windows.next_end() == std::nullopt);
}

TEST_CASE("close_due closes several windows at once, oldest first, skipping empty ones",
          "[window]") {
  TumblingWindows windows(10);
  windows.add(35, 3);
  windows.add(5, 1);
  windows.add(15, 2);
  static_cast<void>(windows.accumulator_at(45));  // touched but never given a value
  windows.add(55, 5);
  CHECK(open_starts(windows) == std::vector<TimeMs>{0, 10, 30, 40, 50});

  const auto closed = windows.close_due(59);
  CHECK(starts(closed) == std::vector<TimeMs>{0, 10, 30});  // 20 never existed, 40 is empty
  for (const auto& w : closed) CHECK(w.end == w.start + 10);
  CHECK(open_starts(windows) == std::vector<TimeMs>{50});
  CHECK(windows.next_end() == std::optional<TimeMs>(60));
}

TEST_CASE("close_due works for windows before the epoch", "[window]") {
  TumblingWindows windows(10);
  windows.add(-5, 1);
  windows.add(-10, 2);
  windows.add(-11, 4);
  CHECK(windows.next_end() == std::optional<TimeMs>(-10));
  auto closed = windows.close_due(-10);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].start == -20);
  CHECK(closed[0].end == -10);
  check_totals(closed[0].totals, 4, 1, 4, 4);
  closed = windows.close_due(0);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].start == -10);
  CHECK(closed[0].end == 0);
  check_totals(closed[0].totals, 3, 2, 1, 2);
}

TEST_CASE("accumulator_at returns the window a value at that time belongs to", "[window]") {
  TumblingWindows windows(10);
  WindowAccumulator& a = windows.accumulator_at(12);
  WindowAccumulator& b = windows.accumulator_at(19);
  CHECK(&a == &b);
  a.add(4);
  b.add(6);
  CHECK(&windows.accumulator_at(20) != &a);
  const auto closed = windows.close_due(20);
  REQUIRE(closed.size() == 1);
  check_totals(closed[0].totals, 10, 2, 4, 6);
}

TEST_CASE("an accumulator reference survives other windows being opened", "[window]") {
  TumblingWindows windows(10);
  WindowAccumulator& held = windows.accumulator_at(5);
  for (TimeMs t = 15; t < 2'000; t += 10) windows.add(t, 1);  // 199 more windows
  held.add(40);
  held.add(2);
  const auto closed = windows.close_due(10);
  REQUIRE(closed.size() == 1);
  check_totals(closed[0].totals, 42, 2, 2, 40);
  CHECK(windows.open_windows().size() == 199);
}

TEST_CASE("a value arriving after its window closed never re-opens that window", "[window]") {
  TumblingWindows windows(10);

  SECTION("it joins the oldest open window") {
    windows.add(5, 1);
    windows.add(15, 2);
    REQUIRE(starts(windows.close_due(10)) == std::vector<TimeMs>{0});
    windows.add(3, 3);  // the clock stepped back into [0, 10), which already went out
    CHECK(open_starts(windows) == std::vector<TimeMs>{10});
    CHECK(windows.close_due(10).empty());  // and [0, 10) is not emitted a second time
    const auto closed = windows.close_due(20);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].start == 10);
    check_totals(closed[0].totals, 5, 2, 2, 3);
  }

  SECTION("with nothing open, it goes to the window after the last closed one") {
    windows.add(5, 1);
    REQUIRE(starts(windows.close_due(10)) == std::vector<TimeMs>{0});
    windows.add(-100, 7);  // far back
    CHECK(open_starts(windows) == std::vector<TimeMs>{10});
    const auto closed = windows.close_due(20);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].start == 10);
    check_totals(closed[0].totals, 7, 1, 7, 7);
  }

  SECTION("windows that closed empty count as closed too") {
    CHECK(windows.close_due(35).empty());  // [0,10) .. [20,30) passed without values
    windows.add(12, 4);                    // belongs to [10, 20), long gone
    CHECK(open_starts(windows) == std::vector<TimeMs>{30});
    CHECK(windows.close_due(39).empty());
    const auto closed = windows.close_due(40);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].start == 30);
    check_totals(closed[0].totals, 4, 1, 4, 4);
  }

  SECTION("a later close_due with an earlier now does not move the boundary back") {
    windows.add(25, 1);
    REQUIRE(starts(windows.close_due(30)) == std::vector<TimeMs>{20});
    CHECK(windows.close_due(5).empty());  // clock stepped back
    windows.add(5, 2);
    CHECK(open_starts(windows) == std::vector<TimeMs>{30});
    CHECK(windows.close_due(39).empty());
    CHECK(starts(windows.close_due(40)) == std::vector<TimeMs>{30});
  }

  SECTION("every window is emitted at most once across a clock that jumps around") {
    const std::vector<std::pair<TimeMs, std::int64_t>> events = {
        {5, 1}, {14, 2}, {9, 3}, {31, 4}, {2, 5}, {47, 6}, {33, 7}, {12, 8}, {58, 9}};
    const std::vector<TimeMs> closes = {10, 40, 20, 35, 50, 45, 70};
    std::vector<ClosedWindow> all;
    std::size_t e = 0;
    for (TimeMs now : closes) {
      for (int k = 0; k < 2 && e < events.size(); ++k, ++e)
        windows.add(events[e].first, events[e].second);
      for (auto& w : windows.close_due(now)) all.push_back(w);
    }
    for (; e < events.size(); ++e) windows.add(events[e].first, events[e].second);
    for (auto& w : windows.close_due(1'000)) all.push_back(w);

    Int128 total = 0;
    std::int64_t count = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
      total += all[i].totals.sum;
      count += all[i].totals.count;
      if (i > 0) CHECK(all[i].start > all[i - 1].start);  // strictly increasing: no repeats
    }
    CHECK((total == 45));  // nothing lost
    CHECK(count == 9);
  }
}

TEST_CASE("restore puts checkpointed windows back and merges with existing ones", "[window]") {
  TumblingWindows windows(10);
  windows.restore(10, accumulate({1, 4}));
  REQUIRE(open_starts(windows) == std::vector<TimeMs>{10});
  CHECK(windows.open_windows().at(10) == accumulate({1, 4}));

  windows.restore(13, accumulate({-2}));  // aligned to its window, merged into it
  windows.restore(30, accumulate({9}));
  windows.add(15, 10);
  CHECK(open_starts(windows) == std::vector<TimeMs>{10, 30});
  CHECK(windows.next_end() == std::optional<TimeMs>(20));

  auto closed = windows.close_due(20);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].start == 10);
  check_totals(closed[0].totals, 13, 4, -2, 10);
  closed = windows.close_due(40);
  REQUIRE(closed.size() == 1);
  check_totals(closed[0].totals, 9, 1, 9, 9);

  SECTION("restoring an empty accumulator leaves an empty window that closes silently") {
    windows.restore(50, WindowAccumulator{});
    CHECK(windows.close_due(60).empty());
    CHECK(windows.open_windows().empty());
  }
}

TEST_CASE("reader threads' windows merged before each close give what one thread gives",
          "[window]") {
  // source.tcp.threads: values are spread over readers 0..2; readers 1 and 2 count into windows
  // of their own, taken and merged into reader 0's just before each close, with the close's time
  // read before the merge. The windows closed must be exactly those of a single TumblingWindows.
  const auto seed = GENERATE(range(1u, 41u));
  CAPTURE(seed);
  std::mt19937_64 random(seed);
  const TimeMs size = 1000;
  TumblingWindows single(size), merged(size);
  std::vector<TumblingWindows> readers(2, TumblingWindows(size));
  TimeMs now = 5'000 + static_cast<TimeMs>(random() % 1000);
  std::size_t closes = 0;
  for (int step = 0; step < 2'000; ++step) {
    now += static_cast<TimeMs>(random() % 40);
    const std::int64_t value = static_cast<std::int64_t>(random() % 2'000'001) - 1'000'000;
    const std::size_t reader = random() % 3;
    single.add(now, value);
    (reader == 0 ? merged : readers[reader - 1]).add(now, value);
    if (random() % 50 == 0) {
      for (auto& r : readers) merged.merge(r.take_open());
      const auto expected = single.close_due(now);
      const auto got = merged.close_due(now);
      REQUIRE(got.size() == expected.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].start == expected[i].start);
        CHECK(got[i].totals == expected[i].totals);
      }
      closes += got.size();
    }
  }
  for (auto& r : readers) {
    merged.merge(r.take_open());
    CHECK(r.open_windows().empty());
  }
  CHECK(merged.open_windows() == single.open_windows());
  CHECK(closes > 10);
}

TEST_CASE("merge folds a window already closed into the oldest open one", "[window]") {
  // A reader's clock may lag the event loop's (it read the time before the loop closed the
  // window): its share lands in the oldest open window, as a value from a clock stepped back.
  TumblingWindows windows(1000);
  windows.add(1500, 1);
  windows.add(2500, 2);
  CHECK(windows.close_due(2000).size() == 1);
  windows.merge({{1000, accumulate({10, 20})}, {3000, accumulate({5})}});
  const auto& open = windows.open_windows();
  REQUIRE(open.size() == 2);
  CHECK(open.at(2000) == accumulate({2, 10, 20}));
  CHECK(open.at(3000) == accumulate({5}));
}

TEST_CASE("WindowAccumulator::merge combines totals", "[window]") {
  const auto [left, right] = GENERATE(table<std::vector<std::int64_t>, std::vector<std::int64_t>>({
      {{1, 2, 3}, {4, 5}},
      {{-7}, {7}},
      {{}, {3, -3}},
      {{3, -3}, {}},
      {{}, {}},
      {{kMax}, {kMax, kMax}},
      {{kMin, kMax}, {kMin}},
      {{5, 5}, {5}},
  }));
  std::vector<std::int64_t> both = left;
  both.insert(both.end(), right.begin(), right.end());

  WindowAccumulator merged = accumulate(left);
  merged.merge(accumulate(right));
  CHECK(merged == accumulate(both));
  CHECK(merged.empty() == both.empty());

  WindowAccumulator other_way = accumulate(right);
  other_way.merge(accumulate(left));
  CHECK(other_way == merged);
}

TEST_CASE("WindowAccumulator::add tracks sum, count, min and max", "[window]") {
  WindowAccumulator acc;
  CHECK(acc.empty());
  acc.add(0);
  CHECK_FALSE(acc.empty());
  check_totals(acc, 0, 1, 0, 0);
  acc.add(kMin);
  acc.add(kMax);
  check_totals(acc, -1, 3, kMin, kMax);
}

TEST_CASE("window_fields emits the configured aggregates in the configured order", "[window]") {
  // Values 4, -2, 7, 3: sum 12, count 4, min -2, max 7, mean 3.
  const WindowAccumulator totals = accumulate({4, -2, 7, 3});
  const auto [aggregates, expected_names] =
      GENERATE(table<std::vector<Aggregate>, std::vector<std::string>>({
          {{Aggregate::sum}, {"sum"}},
          {{Aggregate::count}, {"count"}},
          {{Aggregate::min}, {"min"}},
          {{Aggregate::max}, {"max"}},
          {{Aggregate::mean}, {"mean"}},
          {{Aggregate::sum, Aggregate::count, Aggregate::min, Aggregate::max, Aggregate::mean},
           {"sum", "count", "min", "max", "mean"}},
          {{Aggregate::mean, Aggregate::max, Aggregate::min, Aggregate::count, Aggregate::sum},
           {"mean", "max", "min", "count", "sum"}},
          {{Aggregate::max, Aggregate::sum}, {"max", "sum"}},
      }));
  bool saturated = true;  // must be overwritten
  const auto fields = window_fields(totals, aggregates, saturated);
  CHECK_FALSE(saturated);
  REQUIRE(names(fields) == expected_names);
  for (const auto& f : fields) {
    CAPTURE(f.name);
    if (f.name == "sum") CHECK(int_field(f) == 12);
    if (f.name == "count") CHECK(int_field(f) == 4);
    if (f.name == "min") CHECK(int_field(f) == -2);
    if (f.name == "max") CHECK(int_field(f) == 7);
    if (f.name == "mean") CHECK(double_field(f) == 3.0);  // a double even when whole
  }
}

TEST_CASE("window_fields computes the mean as a double", "[window]") {
  const auto [values, mean] = GENERATE(table<std::vector<std::int64_t>, double>({
      {{1, 2}, 1.5},
      {{-1, -2}, -1.5},
      {{1, 1, 2}, 4.0 / 3.0},
      {{5}, 5.0},
      {{-3, 3}, 0.0},
      {{kMax, kMax}, static_cast<double>(kMax)},  // exact: the 128-bit sum does not overflow
      {{kMin, kMin, kMin}, static_cast<double>(kMin)},
      {{kMax, kMin}, -0.5},
  }));
  bool saturated = false;
  const auto fields = window_fields(accumulate(values), {Aggregate::mean}, saturated);
  REQUIRE(!fields.empty());
  CHECK(fields[0].name == "mean");
  CHECK(double_field(fields[0]) == Approx(mean).epsilon(1e-15));
}

TEST_CASE("window_fields clamps a sum outside int64 and flags it", "[window]") {
  const auto [values, expected_sum, expect_saturated] =
      GENERATE(table<std::vector<std::int64_t>, std::int64_t, bool>({
          {{kMax}, kMax, false},
          {{kMin}, kMin, false},
          {{kMax, 1}, kMax, true},
          {{kMax, kMax}, kMax, true},
          {{kMin, -1}, kMin, true},
          {{kMin, kMin}, kMin, true},
          {{kMax - 5, 5}, kMax, false},  // exactly the bound
          {{kMin + 5, -5}, kMin, false},
          {{kMax, 10, -20}, kMax - 10, false},  // past the bound and back: exact
          {{kMin, -5, 10}, kMin + 5, false},
          {{kMax, kMax, kMin, kMin}, -2, false},
          {{kMax, kMax, kMax, kMin}, kMax, true},
      }));
  const WindowAccumulator totals = accumulate(values);

  bool saturated = !expect_saturated;  // must be overwritten either way
  const auto fields =
      window_fields(totals, {Aggregate::sum, Aggregate::count, Aggregate::mean}, saturated);
  CHECK(saturated == expect_saturated);

  std::vector<std::string> expected_names{"sum", "count", "mean"};
  if (expect_saturated) expected_names.push_back("sum_saturated");  // an extra field, last
  REQUIRE(names(fields) == expected_names);
  CHECK(int_field(fields[0]) == expected_sum);
  CHECK(int_field(fields[1]) == static_cast<std::int64_t>(values.size()));
  if (expect_saturated) CHECK(bool_field(fields[3]) == true);
}

TEST_CASE("the 128-bit sum stays exact through long runs of extreme values", "[window]") {
  WindowAccumulator acc;
  for (int i = 0; i < 100'000; ++i) acc.add(kMax);
  bool saturated = false;
  auto fields = window_fields(acc, {Aggregate::sum, Aggregate::mean}, saturated);
  CHECK(saturated);
  REQUIRE(fields.size() == 3);
  CHECK(int_field(fields[0]) == kMax);
  CHECK(double_field(fields[1]) == static_cast<double>(kMax));
  CHECK(fields[2].name == "sum_saturated");

  for (int i = 0; i < 100'000; ++i) acc.add(kMin);  // net sum: -100000
  fields = window_fields(acc, {Aggregate::sum, Aggregate::count}, saturated);
  CHECK_FALSE(saturated);
  REQUIRE(fields.size() == 2);
  CHECK(int_field(fields[0]) == -100'000);
  CHECK(int_field(fields[1]) == 200'000);
}
