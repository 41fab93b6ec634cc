// Component tests for store/checkpoint_store against a real RocksDB in a temporary directory:
// checkpoint round trips, incremental point saves, window replacement, pipeline isolation,
// reopening, dead letters, open() failures and the format version (a store written by the release
// before it, kept in tests/store/fixtures/, is read and migrated; a newer one is refused), and
// keyed windows (format version 2) through real checkpoints, and the log of accepted inputs
// (format version 3).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <rocksdb/db.h>

#include "source/line_protocol_parser.hpp"
#include "store/checkpoint_store.hpp"
#include "support/process.hpp"

using tumbled::sink::QueuedPoint;
using tumbled::store::CheckpointStore;
using tumbled::store::DeadLetter;
using tumbled::store::PipelineCheckpoint;
using tumbled::store::RestoredPipeline;
using tumbled::test::TempDir;
using tumbled::window::Int128;
using tumbled::window::TimeMs;
using tumbled::window::WindowAccumulator;

namespace {

using Windows = std::map<TimeMs, WindowAccumulator>;
using Points = std::deque<QueuedPoint>;

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

WindowAccumulator totals(Int128 sum, std::int64_t count, std::int64_t min, std::int64_t max) {
  WindowAccumulator a;
  a.sum = sum;
  a.count = count;
  a.min = min;
  a.max = max;
  return a;
}

WindowAccumulator of_values(std::initializer_list<std::int64_t> values) {
  WindowAccumulator a;
  for (const auto v : values) a.add(v);
  return a;
}

std::string line_for(std::uint64_t seq) {
  return "records,window=10-sec sum=" + std::to_string(seq) + "i " + std::to_string(seq * 10) +
         "\n";
}

// Points seq first..last (inclusive), lines from line_for().
Points points_between(std::uint64_t first, std::uint64_t last) {
  Points points;
  for (std::uint64_t seq = first; seq <= last; ++seq)
    points.push_back({seq, static_cast<TimeMs>(seq), line_for(seq)});
  return points;
}

std::vector<std::uint64_t> seqs(const RestoredPipeline& restored) {
  std::vector<std::uint64_t> out;
  for (const auto& p : restored.points) out.push_back(p.seq);
  return out;
}

std::vector<std::uint64_t> seq_range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t seq = first; seq <= last; ++seq) out.push_back(seq);
  return out;
}

void save_ok(CheckpointStore& store, const std::string& pipeline, const Windows& windows,
             const Points& points, std::uint64_t saved_below) {
  const auto error = store.save(pipeline, PipelineCheckpoint{windows, points, saved_below});
  INFO("save error: " << error.value_or("none"));
  REQUIRE_FALSE(error.has_value());
}

// A 128-bit value as text, for readable failure messages.
std::string to_text(Int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  auto u = negative ? -static_cast<tumbled::window::UInt128>(v)
                    : static_cast<tumbled::window::UInt128>(v);
  std::string digits;
  while (u != 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  return negative ? "-" + digits : digits;
}

void check_same_windows(const Windows& actual, const Windows& expected) {
  REQUIRE(actual.size() == expected.size());
  for (const auto& [start, want] : expected) {
    INFO("window start " << start);
    const auto it = actual.find(start);
    REQUIRE(it != actual.end());
    const auto& got = it->second;
    INFO("sum " << to_text(got.sum) << ", expected " << to_text(want.sum));
    CHECK(got.sum == want.sum);
    CHECK(got.count == want.count);
    CHECK(got.min == want.min);
    CHECK(got.max == want.max);
  }
}

}  // namespace

TEST_CASE("CheckpointStore starts empty", "[store]") {
  TempDir dir;
  auto store = CheckpointStore::open((dir.path() / "state").string());
  REQUIRE(store);
  const auto restored = store->load("main");
  CHECK(restored.open_windows.empty());
  CHECK(restored.points.empty());
  CHECK(store->dead_letters().empty());
}

TEST_CASE("CheckpointStore round-trips open windows and points", "[store]") {
  TempDir dir;
  auto store = CheckpointStore::open(dir.path().string());

  const Int128 beyond_int64 = static_cast<Int128>(kMax) * 1000 + 7;  // > 2^63
  const Int128 below_int64 = static_cast<Int128>(kMin) * 1000 - 7;   // < -2^63
  const Int128 huge = (static_cast<Int128>(1) << 126) + 12345;       // near the 128-bit limit
  const Windows windows{
      {kMin, totals(below_int64, 1000, kMin, -1)},  // the lowest start there is
      {-20'000, of_values({-5, -7, 3})},            // negative start (before the epoch)
      {-10'000, totals(-1, 1, -1, -1)},
      {0, totals(0, 2, kMin, kMax)},  // min/max at the int64 extremes
      {1'700'000'000'000, totals(beyond_int64, 1000, 1, kMax)},
      {1'700'000'010'000, totals(huge, kMax, kMin, kMax)},
      {kMax - 1, of_values({42})},  // the highest start a clock could give
  };
  const Points points = points_between(1, 5);
  save_ok(*store, "main", windows, points, 1);

  const auto restored = store->load("main");
  check_same_windows(restored.open_windows, windows);
  // Keys sort by start even across the sign: the map order must match the numeric order.
  std::vector<TimeMs> starts;
  for (const auto& [start, _] : restored.open_windows) starts.push_back(start);
  CHECK(starts == std::vector<TimeMs>{kMin, -20'000, -10'000, 0, 1'700'000'000'000,
                                      1'700'000'010'000, kMax - 1});

  REQUIRE(seqs(restored) == seq_range(1, 5));
  for (const auto& p : restored.points) CHECK(p.line == line_for(p.seq));
}

TEST_CASE("CheckpointStore returns points in seq order, beyond byte and 32-bit boundaries",
          "[store]") {
  TempDir dir;
  auto store = CheckpointStore::open(dir.path().string());
  // Sequence numbers whose little-endian or decimal order would differ from numeric order.
  const std::vector<std::uint64_t> numbers{
      255, 256, 257, 65'535, 65'536, 4'294'967'295ULL, 4'294'967'296ULL, 1ULL << 40};
  Points points;
  for (const auto seq : numbers) points.push_back({seq, 0, line_for(seq)});
  save_ok(*store, "main", {}, points, 0);

  const auto restored = store->load("main");
  CHECK(seqs(restored) == numbers);
  for (const auto& p : restored.points) CHECK(p.line == line_for(p.seq));
}

TEST_CASE("CheckpointStore keeps a point's bytes exactly", "[store]") {
  TempDir dir;
  auto store = CheckpointStore::open(dir.path().string());
  static const char raw[] = "m,t=a\\ b f=\"x\\\"y\"\0z 1\n";
  const std::string odd = std::string(raw, sizeof raw - 1) + "\xff\xfe";
  const Points points{{1, 0, odd}, {2, 0, ""}, {3, 0, std::string(100'000, 'x') + "\n"}};
  save_ok(*store, "main", {}, points, 1);
  const auto restored = store->load("main");
  REQUIRE(restored.points.size() == 3);
  CHECK(restored.points[0].line == odd);
  CHECK(restored.points[1].line.empty());
  CHECK(restored.points[2].line == points[2].line);
}

TEST_CASE("CheckpointStore saves points incrementally and deletes acknowledged ones", "[store]") {
  TempDir dir;
  auto store = CheckpointStore::open(dir.path().string());

  // Round 1: points 1..4 are new.
  Points queue = points_between(1, 4);
  std::uint64_t saved_below = 1;
  save_ok(*store, "main", {}, queue, saved_below);
  saved_below = 5;
  CHECK(seqs(store->load("main")) == seq_range(1, 4));

  // Round 2: 1 and 2 acknowledged, 5..7 new. Points already saved are not written again: give
  // them different text in the queue, and the store must still hold the original.
  queue.pop_front();
  queue.pop_front();
  for (auto& p : queue) p.line = "rewritten " + std::to_string(p.seq) + "\n";
  for (auto& p : points_between(5, 7)) queue.push_back(p);
  save_ok(*store, "main", {}, queue, saved_below);
  saved_below = 8;
  {
    const auto restored = store->load("main");
    REQUIRE(seqs(restored) == seq_range(3, 7));
    for (const auto& p : restored.points) CHECK(p.line == line_for(p.seq));
  }

  // Round 3: nothing new, 3..5 acknowledged.
  queue.erase(queue.begin(), queue.begin() + 3);
  save_ok(*store, "main", {}, queue, saved_below);
  CHECK(seqs(store->load("main")) == seq_range(6, 7));

  // Round 4: everything acknowledged, queue empty, no new points.
  queue.clear();
  save_ok(*store, "main", {}, queue, saved_below);
  CHECK(store->load("main").points.empty());

  // Round 5: new points 8..10 after an empty spell.
  queue = points_between(8, 10);
  save_ok(*store, "main", {}, queue, saved_below);
  saved_below = 11;
  CHECK(seqs(store->load("main")) == seq_range(8, 10));

  // Round 6: 11 and 12 were emitted and acknowledged between two checkpoints, along with all
  // of 8..10: the queue is empty again and nothing is left.
  queue.clear();
  saved_below = 13;
  save_ok(*store, "main", {}, queue, saved_below);
  CHECK(store->load("main").points.empty());

  // Round 7: the queue holds 13..20 of which 13..15 were saved before, but were acknowledged
  // partly (13) in between: only 14.. remain, and 16..20 are added.
  queue = points_between(13, 15);
  save_ok(*store, "main", {}, queue, 13);
  queue.pop_front();
  for (auto& p : points_between(16, 20)) queue.push_back(p);
  save_ok(*store, "main", {}, queue, 16);
  CHECK(seqs(store->load("main")) == seq_range(14, 20));
}

TEST_CASE("CheckpointStore replaces the open windows on every save", "[store]") {
  TempDir dir;
  auto store = CheckpointStore::open(dir.path().string());
  const Points none;

  save_ok(*store, "main",
          {{-10'000, of_values({1})}, {0, of_values({2, 3})}, {10'000, of_values({4})}}, none, 1);
  check_same_windows(store->load("main").open_windows,
                     {{-10'000, of_values({1})}, {0, of_values({2, 3})}, {10'000, of_values({4})}});

  // -10'000 and 0 closed, 10'000 grew, 20'000 opened.
  save_ok(*store, "main", {{10'000, of_values({4, 5})}, {20'000, of_values({6})}}, none, 1);
  check_same_windows(store->load("main").open_windows,
                     {{10'000, of_values({4, 5})}, {20'000, of_values({6})}});

  // An empty accumulator is not an open window worth keeping.
  save_ok(*store, "main", {{20'000, of_values({6})}, {30'000, WindowAccumulator{}}}, none, 1);
  check_same_windows(store->load("main").open_windows, {{20'000, of_values({6})}});

  // Windows at the extremes of the key space are replaced too.
  save_ok(*store, "main", {{kMin, of_values({1})}, {kMax, of_values({2})}}, none, 1);
  check_same_windows(store->load("main").open_windows,
                     {{kMin, of_values({1})}, {kMax, of_values({2})}});
  save_ok(*store, "main", {{0, of_values({3})}}, none, 1);
  check_same_windows(store->load("main").open_windows, {{0, of_values({3})}});

  // No open windows at all.
  save_ok(*store, "main", {}, none, 1);
  CHECK(store->load("main").open_windows.empty());
}

TEST_CASE("CheckpointStore keeps windows and points apart", "[store]") {
  TempDir dir;
  auto store = CheckpointStore::open(dir.path().string());
  // A window and a point with the same number must not overwrite each other, and replacing the
  // windows must not delete points (nor the other way round).
  save_ok(*store, "main", {{1, of_values({9})}, {2, of_values({8})}}, points_between(1, 3), 1);
  save_ok(*store, "main", {}, points_between(1, 3), 4);
  auto restored = store->load("main");
  CHECK(restored.open_windows.empty());
  CHECK(seqs(restored) == seq_range(1, 3));

  save_ok(*store, "main", {{5, of_values({7})}}, {}, 4);
  restored = store->load("main");
  CHECK(restored.points.empty());
  check_same_windows(restored.open_windows, {{5, of_values({7})}});
}

TEST_CASE("CheckpointStore isolates pipelines whose names share a prefix", "[store]") {
  TempDir dir;
  auto store = CheckpointStore::open(dir.path().string());
  const std::vector<std::string> names{"a", "ab", "a-b", "b", "a\x01"};
  std::map<std::string, Windows> windows;
  std::map<std::string, Points> points;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto n = static_cast<std::int64_t>(i) + 1;
    windows[names[i]] = {{n * 1'000, of_values({n})}, {-n * 1'000, of_values({-n, n})}};
    points[names[i]] = points_between(i * 10 + 1, i * 10 + 3);
    save_ok(*store, names[i], windows[names[i]], points[names[i]], 0);
  }
  for (const auto& name : names) {
    INFO("pipeline " << name);
    const auto restored = store->load(name);
    check_same_windows(restored.open_windows, windows[name]);
    std::vector<std::uint64_t> want;
    for (const auto& p : points[name]) want.push_back(p.seq);
    CHECK(seqs(restored) == want);
  }
  CHECK(store->load("").points.empty());
  CHECK(store->load("").open_windows.empty());
  CHECK(store->load("a-").points.empty());

  // Replacing and acknowledging everything in "a" leaves its neighbours alone.
  save_ok(*store, "a", {}, {}, 1'000);
  CHECK(store->load("a").open_windows.empty());
  CHECK(store->load("a").points.empty());
  for (const auto& name : names) {
    if (name == "a") continue;
    INFO("pipeline " << name);
    const auto restored = store->load(name);
    check_same_windows(restored.open_windows, windows[name]);
    CHECK(restored.points.size() == 3);
  }
}

TEST_CASE("CheckpointStore data survives closing and reopening", "[store]") {
  TempDir dir;
  const auto path = (dir.path() / "nested" / "state").string();  // created on open
  const Windows windows{{-10'000, totals(static_cast<Int128>(kMax) * 3, 3, kMax, kMax)},
                        {0, of_values({1, 2})}};
  {
    auto store = CheckpointStore::open(path);
    save_ok(*store, "main", windows, points_between(1, 6), 1);
    Points queue = points_between(3, 9);  // 1, 2 acknowledged; 7..9 new
    save_ok(*store, "main", windows, queue, 7);
    save_ok(*store, "other", {}, points_between(100, 100), 0);
    REQUIRE_FALSE(store->add_dead_letter({"main", 42, 1'700'000'000'000, "HTTP 400: bad", "x\n"}));
  }
  {
    auto store = CheckpointStore::open(path);
    auto restored = store->load("main");
    check_same_windows(restored.open_windows, windows);
    CHECK(seqs(restored) == seq_range(3, 9));
    CHECK(seqs(store->load("other")) == std::vector<std::uint64_t>{100});
    const auto letters = store->dead_letters();
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].first_seq == 42);
    CHECK(letters[0].body == "x\n");

    // Keep checkpointing incrementally after the restart, as a restored pipeline does.
    Points queue = points_between(5, 11);  // 3, 4 acknowledged, 10, 11 new
    save_ok(*store, "main", {}, queue, 10);
  }
  auto store = CheckpointStore::open(path);
  const auto restored = store->load("main");
  CHECK(restored.open_windows.empty());
  CHECK(seqs(restored) == seq_range(5, 11));
  for (const auto& p : restored.points) CHECK(p.line == line_for(p.seq));
}

TEST_CASE("CheckpointStore adds, lists and removes dead letters", "[store]") {
  TempDir dir;
  const auto path = dir.path().string();
  auto store = CheckpointStore::open(path);

  const DeadLetter first{
      "main", 7, 1'700'000'000'123,
      "HTTP 400: {\"error\":\"partial write: field type conflict\"}\n"
      "second line (InfluxDB could not store these points)",
      "records,window=10-sec sum=1i 10000\nrecords,window=10-sec sum=2i 20000\n"};
  const DeadLetter second{"main", 1ULL << 40, -5, "", ""};  // empty error and body
  const DeadLetter other{"main-2", 7, 0, "HTTP 404: database not found",
                         std::string("binary\0body\n", 12)};
  const DeadLetter prefix{"mai", 7, 1, "e", "b\n"};
  for (const auto* letter : {&first, &second, &other, &prefix}) {
    const auto error = store->add_dead_letter(*letter);
    INFO(error.value_or("none"));
    REQUIRE_FALSE(error.has_value());
  }
  // Points and windows of the same pipeline are unaffected by dead letters.
  CHECK(store->load("main").points.empty());

  auto letters = store->dead_letters();
  REQUIRE(letters.size() == 4);
  const auto find = [&](const std::string& pipeline, std::uint64_t seq) -> const DeadLetter* {
    for (const auto& l : letters)
      if (l.pipeline == pipeline && l.first_seq == seq) return &l;
    return nullptr;
  };
  for (const auto* want : {&first, &second, &other, &prefix}) {
    INFO("dead letter " << want->pipeline << " #" << want->first_seq);
    const DeadLetter* got = find(want->pipeline, want->first_seq);
    REQUIRE(got != nullptr);
    CHECK(got->failed_at_ms == want->failed_at_ms);
    CHECK(got->error == want->error);
    CHECK(got->body == want->body);
  }

  // Adding again with the same pipeline and first seq replaces the letter.
  DeadLetter again = first;
  again.error = "HTTP 400: again";
  REQUIRE_FALSE(store->add_dead_letter(again));
  letters = store->dead_letters();
  REQUIRE(letters.size() == 4);
  CHECK(find("main", 7)->error == "HTTP 400: again");

  CHECK_FALSE(store->remove_dead_letter("main", 7).has_value());
  letters = store->dead_letters();
  REQUIRE(letters.size() == 3);
  CHECK(find("main", 7) == nullptr);
  CHECK(find("main-2", 7) != nullptr);  // same seq in another pipeline stays
  CHECK(find("mai", 7) != nullptr);
  CHECK(find("main", 1ULL << 40) != nullptr);

  // Removing one that does not exist is not an error.
  CHECK_FALSE(store->remove_dead_letter("main", 7).has_value());
  CHECK_FALSE(store->remove_dead_letter("nope", 1).has_value());
  CHECK(store->dead_letters().size() == 3);

  // Survives a reopen.
  store.reset();
  store = CheckpointStore::open(path);
  letters = store->dead_letters();
  REQUIRE(letters.size() == 3);
  REQUIRE(find("main-2", 7) != nullptr);
  CHECK(find("main-2", 7)->body == other.body);

  for (const auto& l : std::vector<DeadLetter>(letters))
    REQUIRE_FALSE(store->remove_dead_letter(l.pipeline, l.first_seq));
  CHECK(store->dead_letters().empty());
}

TEST_CASE("CheckpointStore::open throws naming the path it cannot use", "[store]") {
  TempDir dir;
  // A regular file where a directory should be: fails even for root.
  const auto file = dir.path() / "not-a-directory";
  std::ofstream(file) << "x";

  SECTION("below a regular file") {
    const auto path = (file / "state").string();
    try {
      CheckpointStore::open(path);
      FAIL("open() succeeded on " << path);
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(message.find(path) != std::string::npos);
    }
  }
  SECTION("a regular file itself") {
    const auto path = file.string();
    try {
      CheckpointStore::open(path);
      FAIL("open() succeeded on " << path);
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(message.find(path) != std::string::npos);
    }
  }
  SECTION("a store another process (here: another handle) holds") {
    const auto path = (dir.path() / "state").string();
    auto holder = CheckpointStore::open(path);
    try {
      CheckpointStore::open(path);
      FAIL("open() succeeded twice on " << path);
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(message.find(path) != std::string::npos);
    }
  }
}

// ---- Format version ----------------------------------------------------------------------------

TEST_CASE("a new CheckpointStore records the current format version", "[store][format]") {
  TempDir dir;
  const std::string path = (dir.path() / "state").string();
  CHECK(CheckpointStore::open(path)->format_version() == tumbled::store::kFormatVersion);
  CHECK(CheckpointStore::open(path, CheckpointStore::Access::read_only)->format_version() ==
        tumbled::store::kFormatVersion);
}

TEST_CASE("stores written by earlier releases are read and migrated", "[store][format]") {
  // Both fixtures were made by a release's daemon (1 s windows, InfluxDB unreachable): 1, 2, 3
  // fed into one window, which closed into a point that was never sent; then 10 and 20 into a
  // window still open at SIGTERM. state-format-1: the release before the version record (the
  // layout of version 1, no record; `sum` only); state-format-1-recorded: the last release of
  // version 1, with its record ([sum, count, min, max]).
  const auto [fixture, recorded_version, point_prefix] =
      GENERATE(table<std::string, std::uint64_t, std::string>({
          {"state-format-1", 0, "records,window=10-sec sum=6i "},
          {"state-format-1-recorded", 1, "records,window=10-sec sum=6i,count=3i,min=1i,max=3i "},
      }));
  CAPTURE(fixture);
  TempDir dir;
  const auto path = dir.path() / "state";
  std::filesystem::copy(TUMBLED_SOURCE_DIR "/tests/store/fixtures/" + fixture, path);
  const auto check = [&point_prefix](const RestoredPipeline& restored) {
    REQUIRE(restored.open_windows.size() == 1);
    const WindowAccumulator& open = restored.open_windows.begin()->second;
    CHECK(open.sum == 30);
    CHECK(open.count == 2);
    CHECK(open.min == 10);
    CHECK(open.max == 20);
    REQUIRE(restored.points.size() == 1);
    CHECK(restored.points[0].line.find(point_prefix) == 0);
    CHECK(restored.next_seq == restored.points[0].seq + 1);
    CHECK(restored.keyed_pairs.empty());
    CHECK_FALSE(restored.watermark);
  };
  {
    auto reader = CheckpointStore::open(path.string(), CheckpointStore::Access::read_only);
    CHECK(reader->format_version() == recorded_version);  // read as it is, not migrated
    check(reader->load("records"));
  }
  {
    auto store = CheckpointStore::open(path.string());
    CHECK(store->format_version() == tumbled::store::kFormatVersion);
    check(store->load("records"));
  }
  // Migrated once: reopening finds the record.
  CHECK(CheckpointStore::open(path.string())->format_version() == tumbled::store::kFormatVersion);
  check(CheckpointStore::open(path.string())->load("records"));
}

TEST_CASE("a store of a newer format version is refused, untouched, with a clear message",
          "[store][format]") {
  TempDir dir;
  const std::string path = (dir.path() / "state").string();
  {
    auto store = CheckpointStore::open(path);
    const Windows windows{{0, totals(5, 1, 5, 5)}};
    const Points points;
    REQUIRE_FALSE(store->save("main", PipelineCheckpoint{windows, points, 1, 1}));
  }
  {
    // What a newer tumbled would leave: its version in the record.
    rocksdb::Options options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families{
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(options)},
        {"dead_letters", rocksdb::ColumnFamilyOptions(options)}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions(options), path, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string record(8, '\0');
    record.back() = static_cast<char>(tumbled::store::kFormatVersion + 1);
    REQUIRE(
        db->Put(rocksdb::WriteOptions(), handles[0], std::string("\0format_version", 15), record)
            .ok());
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
    REQUIRE(db->Close().ok());
  }
  for (const auto access :
       {CheckpointStore::Access::read_write, CheckpointStore::Access::read_only}) {
    CHECK_THROWS_WITH(
        CheckpointStore::open(path, access),
        Catch::Contains("has format version " + std::to_string(tumbled::store::kFormatVersion + 1) +
                        ", written by a newer tumbled") &&
            Catch::Contains("reads versions up to " +
                            std::to_string(tumbled::store::kFormatVersion)));
  }
}

// Keyed windows (format version 2): what KeyedWindows::changes() lists goes into the store and
// comes back, only changed pairs are written, and a dropped window's pairs are gone.
namespace {

using tumbled::source::LineProtocolParser;
using tumbled::source::ParsedLine;
using tumbled::source::Rejection;
using tumbled::window::KeyedSettings;
using tumbled::window::KeyedWindows;

KeyedSettings event_settings() {
  KeyedSettings s;
  s.size_ms = 10'000;
  s.event_time = true;
  s.precision = tumbled::window::Precision::ms;
  s.max_out_of_orderness_ms = 0;
  s.allowed_lateness_ms = 10'000;
  s.group_by = {"k"};
  s.aggregates = {tumbled::config::Aggregate::sum, tumbled::config::Aggregate::count};
  return s;
}

Rejection add(KeyedWindows& w, const std::string& line, TimeMs now) {
  LineProtocolParser parser;
  ParsedLine parsed;
  REQUIRE(parser.parse(line, parsed).ok());
  return w.add(parsed, now);
}

tumbled::store::Error save_keyed(CheckpointStore& store, KeyedWindows& w) {
  const Windows no_windows;
  const Points no_points;
  const auto changes = w.changes();
  auto error = store.save("lp", PipelineCheckpoint{no_windows, no_points, 1, 1, &changes});
  if (!error) w.saved();
  return error;
}

KeyedWindows restored(const CheckpointStore& store) {
  KeyedWindows w(event_settings());
  const auto r = store.load("lp");
  for (const auto& t : r.field_types) w.restore_field_type(t.measurement, t.field, t.is_float);
  for (const auto& p : r.keyed_pairs) REQUIRE(w.restore_pair(p.start, p.key, p.value));
  if (r.watermark) w.restore_time(r.watermark->first, r.watermark->second);
  return w;
}

std::string sorted_points(KeyedWindows& w) {
  std::string out;
  w.emit(out);
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < out.size();) {
    const auto end = out.find('\n', at) + 1;
    lines.push_back(out.substr(at, end - at));
    at = end;
  }
  std::sort(lines.begin(), lines.end());
  std::string text;
  for (const auto& l : lines) text += l;
  return text;
}

}  // namespace

TEST_CASE("CheckpointStore round-trips keyed windows, field types and the watermark",
          "[store][keyed]") {
  TempDir dir;
  const std::string path = (dir.path() / "state").string();
  KeyedWindows live(event_settings());
  {
    auto store = CheckpointStore::open(path);
    CHECK(add(live, "m,k=a v=1i,f=0.5 1000", 0) == Rejection::none);
    CHECK(add(live, "m,k=b v=2i 2000", 0) == Rejection::none);
    using namespace std::string_literals;
    CHECK(add(live, "n\0ul,k=a w\0x=3i 3000"s, 0) == Rejection::none);  // NULs in names
    REQUIRE_FALSE(save_keyed(*store, live));
    CHECK(store->last_save_bytes() > 0);
    // Only the pair written to since is in the next checkpoint.
    CHECK(add(live, "m,k=a v=10i 4000", 0) == Rejection::none);
    const auto changes = live.changes();
    REQUIRE(changes.pairs.size() == 1);
    CHECK(changes.pairs[0].key == "m,k=a");
    CHECK(changes.field_types.empty());
    REQUIRE_FALSE(save_keyed(*store, live));
  }
  // Reopened: the same state, the same points once the watermark passes.
  auto store = CheckpointStore::open(path, CheckpointStore::Access::read_only);
  auto back = restored(*store);
  CHECK(back.open_pairs() == 3);
  CHECK(back.watermark() == live.watermark());
  CHECK(add(back, "m,k=a v=1.5 5000", 0) == Rejection::type_conflict);  // the type came back too
  for (auto* w : {&live, &back}) CHECK(add(*w, "m,k=c v=7i 10000", 0) == Rejection::none);
  using namespace std::string_literals;
  const std::string expected =
      "m,k=a v_sum=11i,v_count=2i,f_sum=0.5,f_count=1i 10000\n"
      "m,k=b v_sum=2i,v_count=1i 10000\n"
      "n\0ul,k=a w\0x_sum=3i,w\0x_count=1i 10000\n"s;
  CHECK(sorted_points(live) == expected);
  CHECK(sorted_points(back) == expected);
}

TEST_CASE("CheckpointStore deletes a dropped keyed window's pairs in the same checkpoint",
          "[store][keyed]") {
  TempDir dir;
  auto store = CheckpointStore::open((dir.path() / "state").string());
  KeyedWindows w(event_settings());
  for (const char* key : {"a", "b", "c"}) {
    CHECK(add(w, std::string("m,k=") + key + " v=1i 1000", 0) == Rejection::none);
  }
  CHECK(add(w, "m,k=a v=1i 15000", 0) == Rejection::none);
  REQUIRE_FALSE(save_keyed(*store, w));
  CHECK(store->load("lp").keyed_pairs.size() == 4);
  // The watermark (20000) passes the first window's end + lateness: its 3 pairs are emitted and
  // dropped; [10000, 20000) is emitted and kept for its lateness; [20000, 30000) opens.
  CHECK(add(w, "m,k=a v=1i 20000", 0) == Rejection::none);
  std::string points;
  CHECK(w.emit(points) == 4);
  CHECK(w.open_pairs() == 2);
  REQUIRE_FALSE(save_keyed(*store, w));
  const auto r = store->load("lp");
  REQUIRE(r.keyed_pairs.size() == 2);
  CHECK(r.keyed_pairs[0].start == 10'000);
  CHECK(r.keyed_pairs[0].key == "m,k=a");
  CHECK(r.keyed_pairs[1].start == 20'000);
  REQUIRE(r.watermark);
  CHECK(r.watermark->first == 20'000);
}

// Format version 3: the log of accepted inputs (source.http). Logged records come back in seq
// order, whole (any byte, the clock, watermark and precision they were decoded with), across a
// reopen; a checkpoint deletes exactly those below its inputs_below, in the same write, and
// pipelines keep their own.
TEST_CASE("CheckpointStore logs accepted inputs until a checkpoint holds them", "[store][inputs]") {
  using tumbled::source::Precision;
  using tumbled::store::AcceptedInput;
  TempDir dir;
  const auto path = (dir.path() / "state").string();
  static constexpr char kOdd[] = "cpu v=1i\n\0\xff m=2 3\n";  // a NUL and a byte that is not UTF-8
  const std::string odd_body(kOdd, sizeof kOdd - 1);
  const std::vector<AcceptedInput> first{
      {1, 1'795'538'712'000, kMin, kMin, Precision::ns, "cpu v=1i\n"},
      {2, 1'795'538'712'001, -5, 7, Precision::h, odd_body},
      {256, -1, kMax, kMax - 1, Precision::us, std::string(100'000, 'x') + "\n"},
  };
  {
    auto store = CheckpointStore::open(path);
    REQUIRE_FALSE(store->append_inputs("web", first));
    REQUIRE_FALSE(store->append_inputs("webx", {{1, 9, 9, 9, Precision::s, "other\n"}}));
    REQUIRE_FALSE(store->sync_wal());
  }
  auto store = CheckpointStore::open(path);
  auto restored = store->load("web");
  REQUIRE(restored.inputs.size() == 3);
  for (std::size_t i = 0; i < first.size(); ++i) {
    INFO("input " << i);
    CHECK(restored.inputs[i].seq == first[i].seq);
    CHECK(restored.inputs[i].read_at == first[i].read_at);
    CHECK(restored.inputs[i].watermark == first[i].watermark);
    CHECK(restored.inputs[i].newest_event == first[i].newest_event);
    CHECK(restored.inputs[i].precision == first[i].precision);
    CHECK(restored.inputs[i].body == first[i].body);
  }

  // A checkpoint holding inputs below 3 deletes 1 and 2, not 256, nor another pipeline's.
  PipelineCheckpoint checkpoint{{}, {}, 1};
  checkpoint.inputs_below = 3;
  REQUIRE_FALSE(store->save("web", checkpoint));
  restored = store->load("web");
  REQUIRE(restored.inputs.size() == 1);
  CHECK(restored.inputs[0].seq == 256);
  CHECK(store->load("webx").inputs.size() == 1);
  // Inputs logged after a checkpoint stay until the next one covers them.
  REQUIRE_FALSE(store->append_inputs("web", {{257, 1, 2, 3, Precision::ms, "late\n"}}));
  checkpoint.inputs_below = 257;
  REQUIRE_FALSE(store->save("web", checkpoint));
  restored = store->load("web");
  REQUIRE(restored.inputs.size() == 1);
  CHECK(restored.inputs[0].seq == 257);
  CHECK(restored.inputs[0].body == "late\n");
  // A pipeline that logs none (TCP) deletes nothing of the others with inputs_below 0.
  REQUIRE_FALSE(store->save("webx", PipelineCheckpoint{{}, {}, 1}));
  CHECK(store->load("webx").inputs.size() == 1);
}

TEST_CASE("CheckpointStore refuses a corrupt accepted input record", "[store][inputs]") {
  TempDir dir;
  const auto path = (dir.path() / "state").string();
  {
    // Below the store's API: a record shorter than its header.
    CheckpointStore::open(path);
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions(), path,
                              {{rocksdb::kDefaultColumnFamilyName, {}}, {"dead_letters", {}}},
                              &handles, &raw)
                .ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    const std::string key = std::string("web") + '\0' + 'i' + std::string(7, '\0') + '\x01';
    REQUIRE(db->Put(rocksdb::WriteOptions(), handles[0], key, "short").ok());
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
  }
  auto store = CheckpointStore::open(path);
  CHECK_THROWS_WITH(store->load("web"),
                    Catch::Contains("corrupt accepted input record in state store"));
}
