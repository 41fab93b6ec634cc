// Unit tests for window/partitioned_windows: the partition tag, resume points and their metadata,
// and the promise behind them: whatever moment an instance stops at, a second one that resumes
// the partition from the committed resume point leaves InfluxDB (simulated: the last point
// written per series and time wins) exactly as one uninterrupted reading would.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "source/line_protocol_parser.hpp"
#include "window/partitioned_windows.hpp"

using tumbled::source::LineProtocolParser;
using tumbled::source::ParsedLine;
using tumbled::source::Rejection;
using tumbled::window::KeyedSettings;
using tumbled::window::Offset;
using tumbled::window::PartitionedWindows;
using tumbled::window::Precision;
using tumbled::window::ResumePoint;
using tumbled::window::TimeMs;

namespace {

constexpr TimeMs kNow = 1'000'000'000;  // the wall clock never matters here (no idle timeout)

KeyedSettings settings(TimeMs lateness) {
  KeyedSettings s;
  s.size_ms = 10'000;
  s.event_time = true;
  s.precision = Precision::ms;
  s.max_out_of_orderness_ms = 2'000;
  s.allowed_lateness_ms = lateness;
  s.idle_timeout_ms = 0;
  s.max_future_ms = 1'000'000'000;
  s.group_by = {"host"};
  return s;
}

// A record: one or more lines of line protocol.
using Record = std::vector<std::string>;

Rejection add_record(PartitionedWindows& w, int partition, Offset offset, const Record& record) {
  Rejection last = Rejection::none;
  for (const auto& text : record) {
    LineProtocolParser parser;
    ParsedLine line;
    REQUIRE(parser.parse(text, line).ok());
    last = w.add(partition, offset, line, kNow);
  }
  w.consumed(partition, offset);
  return last;
}

// InfluxDB as far as overwrites go: the latest point per series and timestamp.
struct Influx {
  std::map<std::string, std::string> points;  // "series timestamp" -> fields
  void write(const std::string& point) {
    const auto first_space = point.find(' ');
    const auto last_space = point.rfind(' ');
    points[point.substr(0, first_space) + point.substr(last_space)] =
        point.substr(first_space + 1, last_space - first_space - 1);
  }
};

// Records with event times that mostly grow, some out of order, a few far behind (late, some
// into windows that never had a record), and a last one far ahead that closes every window.
std::vector<Record> make_records(std::mt19937_64& random, int count) {
  std::vector<Record> records;
  TimeMs t = 100'000;
  std::uniform_int_distribution<int> step(0, 900), jitter(0, 12'000), host(0, 3), value(-50, 100),
      lines(1, 3), kind(0, 19);
  for (int i = 0; i < count; ++i) {
    t += kind(random) == 0 ? 25'000 : step(random);  // now and then a window with no record
    Record record;
    for (int n = lines(random); n > 0; --n) {
      const int k = kind(random);
      const TimeMs at = k == 0 ? t - 15'000 : t - jitter(random);
      record.push_back("m,host=h" + std::to_string(host(random)) +
                       " v=" + std::to_string(value(random)) + "i " + std::to_string(at));
    }
    records.push_back(std::move(record));
  }
  records.push_back({"m,host=h0 v=0i " + std::to_string(t + 100'000)});
  return records;
}

// Reads records[from..] into `w` (partition 0), writing every point at once.
void read_all(PartitionedWindows& w, const std::vector<Record>& records, Offset from,
              Influx& influx) {
  std::uint64_t seq = 0;
  for (Offset o = from; o < static_cast<Offset>(records.size()); ++o) {
    add_record(w, 0, o, records[static_cast<std::size_t>(o)]);
    w.emit([&](std::string&& point) {
      influx.write(point);
      return ++seq;
    });
  }
}

}  // namespace

TEST_CASE("resume point metadata round-trips and refuses what it did not write", "[partitioned]") {
  const ResumePoint point{42, -9'223'372'036'854'775'807 - 1, 1'700'000'000'000, 120'000};
  const auto back = ResumePoint::from(42, point.metadata());
  REQUIRE(back);
  CHECK(*back == point);
  CHECK_FALSE(ResumePoint::from(42, ""));
  CHECK_FALSE(ResumePoint::from(42, "some other consumer"));
  CHECK_FALSE(ResumePoint::from(42, "tumbled/1 1 2"));
  CHECK_FALSE(ResumePoint::from(42, "tumbled/1 1 2 3 4"));
  CHECK_FALSE(ResumePoint::from(42, "tumbled/1 1 2 x"));
  CHECK_FALSE(ResumePoint::from(-1001, point.metadata()));  // no committed offset
}

TEST_CASE("points carry their partition in partition_tag, or no tag with \"\"", "[partitioned]") {
  for (const std::string tag : {"partition", ""}) {
    PartitionedWindows w(settings(0), tag);
    w.assign(3, 0, std::nullopt);
    add_record(w, 3, 0, {"m,host=a v=1i 1000"});
    add_record(w, 3, 1, {"m,host=a v=1i 30000"});
    std::vector<std::string> points;
    w.emit([&](std::string&& point) {
      points.push_back(point);
      return points.size();
    });
    REQUIRE(points.size() == 1);
    CHECK(points[0] ==
          (tag.empty() ? "m,host=a v_sum=1i 10000\n" : "m,host=a,partition=3 v_sum=1i 10000\n"));
  }
}

TEST_CASE("the resume point is the first offset of the oldest window not acknowledged",
          "[partitioned]") {
  PartitionedWindows w(settings(0), "partition");
  CHECK_FALSE(w.resume_point(0));
  w.assign(0, -1, std::nullopt);
  CHECK_FALSE(w.resume_point(0));                // nothing read yet from an unknown offset
  add_record(w, 0, 7, {"m,host=a v=1i 1000"});   // window [0, 10 s)
  add_record(w, 0, 8, {"m,host=a v=1i 12000"});  // [10 s, 20 s): the watermark is 10 s
  CHECK(w.resume_point(0)->offset == 7);
  std::vector<std::uint64_t> seqs;
  w.emit([&](std::string&&) {
    seqs.push_back(seqs.size() + 1);
    return seqs.back();
  });
  REQUIRE(seqs.size() == 1);  // [0, 10 s) closed, not acknowledged
  CHECK(w.resume_point(0)->offset == 7);
  w.acknowledged_below(2);
  const auto point = w.resume_point(0);
  REQUIRE(point);
  CHECK(point->offset == 8);  // [0, 10 s) is complete in InfluxDB; [10 s, 20 s) opened at 8
  CHECK(point->emit_from == 10'000);
  CHECK(point->watermark == -2'000 + 1'000);  // as it stood before record 8
  add_record(w, 0, 9, {"m,host=a v=1i 25000"});
  add_record(w, 0, 10, {"m,host=a v=1i 40000"});
  w.emit([&](std::string&&) {
    seqs.push_back(seqs.size() + 1);
    return seqs.back();
  });
  w.acknowledged_below(seqs.back() + 1);
  CHECK(w.resume_point(0)->offset == 10);  // only [40 s, 50 s) is open
  CHECK(w.revoke(0).empty());
}

TEST_CASE("revoking a partition hands back its points not acknowledged", "[partitioned]") {
  PartitionedWindows w(settings(0), "partition");
  w.assign(0, 0, std::nullopt);
  w.assign(1, 0, std::nullopt);
  add_record(w, 0, 0, {"m,host=a v=1i 1000", "m,host=b v=1i 1000"});
  add_record(w, 0, 1, {"m,host=a v=1i 30000"});
  add_record(w, 1, 0, {"m,host=a v=1i 1000"});
  add_record(w, 1, 1, {"m,host=a v=1i 30000"});
  std::uint64_t seq = 0;
  w.emit([&](std::string&&) { return ++seq; });
  REQUIRE(seq == 3);
  w.acknowledged_below(2);
  CHECK(w.revoke(0) == std::vector<std::uint64_t>{2});
  CHECK(w.revoke(1) == std::vector<std::uint64_t>{3});
  CHECK(w.partitions().empty());
}

TEST_CASE("an instance resuming from any committed resume point leaves InfluxDB as one reading",
          "[partitioned]") {
  for (const TimeMs lateness : {TimeMs{0}, TimeMs{5'000}}) {
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
      CAPTURE(lateness, seed);
      std::mt19937_64 random(seed);
      const auto records = make_records(random, 300);

      Influx reference;
      {
        PartitionedWindows w(settings(lateness), "partition");
        w.assign(0, 0, std::nullopt);
        read_all(w, records, 0, reference);
      }
      REQUIRE(reference.points.size() > 20);

      // The first instance: InfluxDB acknowledges (and commits follow) in random steps, holds
      // some points it has not acknowledged yet, and the instance stops at a random record.
      Influx influx;
      std::optional<ResumePoint> committed;
      {
        PartitionedWindows w(settings(lateness), "partition");
        w.assign(0, 0, std::nullopt);
        std::vector<std::string> sent;
        std::size_t written = 0;
        std::size_t acked = 0;
        const auto stop_at = std::uniform_int_distribution<std::size_t>(0, records.size())(random);
        std::uniform_int_distribution<int> coin(0, 3);
        for (std::size_t o = 0; o < stop_at; ++o) {
          add_record(w, 0, static_cast<Offset>(o), records[o]);
          w.emit([&](std::string&& point) {
            sent.push_back(point);
            return static_cast<std::uint64_t>(sent.size());
          });
          if (coin(random) == 0) {
            written = std::uniform_int_distribution<std::size_t>(written, sent.size())(random);
            for (std::size_t i = acked; i < written; ++i) influx.write(sent[i]);
            acked = std::uniform_int_distribution<std::size_t>(acked, written)(random);
            w.acknowledged_below(acked + 1);
            committed = w.resume_point(0);
          }
        }
        for (std::size_t i = acked; i < written; ++i) influx.write(sent[i]);
      }

      // The next owner: from the committed resume point, or from the start without one.
      PartitionedWindows next(settings(lateness), "partition");
      next.assign(0, committed ? committed->offset : 0, committed);
      read_all(next, records, committed ? committed->offset : 0, influx);
      CHECK(influx.points == reference.points);
    }
  }
}
