// Unit tests for window/keyed_windows: keys, the text of emitted points, field selection and
// types, event and processing time, lateness, bounds, checkpoints and restore. Every case runs on
// simulated time (each call is given its `now`); input lines are parsed with LineProtocolParser.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "source/line_protocol_parser.hpp"
#include "window/keyed_windows.hpp"

using tumbled::config::Aggregate;
using tumbled::source::LineProtocolParser;
using tumbled::source::ParsedLine;
using tumbled::source::ParseStatus;
using tumbled::source::Rejection;
using tumbled::window::KeyedChanges;
using tumbled::window::KeyedSettings;
using tumbled::window::KeyedWindows;
using tumbled::window::Precision;
using tumbled::window::TimeMs;

namespace Catch {
template <>
struct StringMaker<Rejection> {
  static std::string convert(Rejection r) { return tumbled::source::name(r); }
};
}  // namespace Catch

namespace {

constexpr TimeMs kMinTime = std::numeric_limits<TimeMs>::min();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

const std::vector<Aggregate> kAllAggregates{Aggregate::sum, Aggregate::count, Aggregate::min,
                                            Aggregate::max, Aggregate::mean};

KeyedSettings processing_time(std::vector<std::string> group_by = {}) {
  KeyedSettings s;
  s.size_ms = 10'000;
  s.event_time = false;
  s.group_by = std::move(group_by);
  return s;
}

// Event time in ms, no out-of-orderness, no lateness, no idle timeout, a generous max_future.
KeyedSettings event_time(std::vector<std::string> group_by = {}) {
  KeyedSettings s;
  s.size_ms = 10'000;
  s.event_time = true;
  s.precision = Precision::ms;
  s.max_out_of_orderness_ms = 0;
  s.allowed_lateness_ms = 0;
  s.idle_timeout_ms = 0;
  s.max_future_ms = 1'000'000;
  s.group_by = std::move(group_by);
  return s;
}

// The lines of `text` sorted: points of one window come in no particular key order.
std::string sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line + "\n");
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& line : lines) out += line;
  return out;
}

// A KeyedWindows fed with line-protocol text.
class Keyed {
 public:
  explicit Keyed(KeyedSettings settings) : w(std::move(settings)) {}

  Rejection add(std::string_view line, TimeMs now) {
    INFO("line: " << line);
    REQUIRE(parser_.parse(line, parsed_).status == ParseStatus::ok);
    return w.add(parsed_, now);
  }
  // emit()'s points; it appends to what the string holds.
  std::string emit() {
    std::string out = "(kept)";
    const std::size_t points = w.emit(out);
    REQUIRE(out.substr(0, 6) == "(kept)");
    out.erase(0, 6);
    CHECK(points == static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n')));
    return out;
  }
  std::string emit_sorted() { return sorted_lines(emit()); }

  KeyedWindows w;

 private:
  LineProtocolParser parser_;
  ParsedLine parsed_;
};

// The state store as the pipeline keeps it: every checkpoint's changes applied in turn.
struct FakeStore {
  std::map<std::pair<TimeMs, std::string>, std::string> pairs;
  std::map<std::pair<std::string, std::string>, bool> field_types;
  TimeMs watermark = kMinTime;
  TimeMs newest_event = kMinTime;

  void checkpoint(KeyedWindows& w) {
    const KeyedChanges c = w.changes();
    for (const TimeMs start : c.dropped_windows) {
      std::erase_if(pairs, [start](const auto& entry) { return entry.first.first == start; });
    }
    for (const auto& p : c.pairs) pairs[{p.start, std::string(p.key)}] = p.value;
    for (const auto& t : c.field_types) {
      const bool added =
          field_types.try_emplace({std::string(t.measurement), std::string(t.field)}, t.is_float)
              .second;
      CHECK(added);  // a field type is listed once
    }
    watermark = c.watermark;
    newest_event = c.newest_event;
    w.saved();
  }

  // Restores in the pipeline's order: field types, pairs, time.
  void restore(KeyedWindows& w) const {
    for (const auto& [name, is_float] : field_types) {
      w.restore_field_type(name.first, name.second, is_float);
    }
    for (const auto& [at, value] : pairs) {
      INFO("restoring window " << at.first << " key " << at.second);
      CHECK(w.restore_pair(at.first, at.second, value));
    }
    w.restore_time(watermark, newest_event);
  }
};

// changes() as comparable text: pairs by (start, key) with their encoded values, dropped
// windows, field types, watermark.
struct ChangesView {
  std::map<std::pair<TimeMs, std::string>, std::string> pairs;
  std::vector<TimeMs> dropped;
  std::vector<std::tuple<std::string, std::string, bool>> types;
  TimeMs watermark;
  TimeMs newest_event;

  explicit ChangesView(const KeyedChanges& c)
      : dropped(c.dropped_windows), watermark(c.watermark), newest_event(c.newest_event) {
    for (const auto& p : c.pairs) {
      const bool added = pairs.try_emplace({p.start, std::string(p.key)}, p.value).second;
      CHECK(added);  // a pair is listed once
    }
    for (const auto& t : c.field_types) {
      types.emplace_back(std::string(t.measurement), std::string(t.field), t.is_float);
    }
    std::sort(dropped.begin(), dropped.end());
    std::sort(types.begin(), types.end());
  }
  std::vector<std::pair<TimeMs, std::string>> pair_names() const {
    std::vector<std::pair<TimeMs, std::string>> out;
    for (const auto& [at, value] : pairs) out.push_back(at);
    return out;
  }
};

using PairNames = std::vector<std::pair<TimeMs, std::string>>;
using Types = std::vector<std::tuple<std::string, std::string, bool>>;

void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Keys

TEST_CASE("keyed: the key is the measurement and the group_by tags present, in any order",
          "[keyed]") {
  Keyed k(processing_time({"region", "host"}));
  CHECK(k.add("cpu,region=eu,host=a,dc=x v=1i", 1'000) == Rejection::none);
  CHECK(k.add("cpu,host=a,region=eu v=2i", 1'000) == Rejection::none);  // other order, same key
  CHECK(k.add("cpu,dc=y,host=a,region=eu v=4i", 1'000) == Rejection::none);
  CHECK(k.add("cpu,host=b v=8i", 1'000) == Rejection::none);  // region missing: absent
  CHECK(k.add("cpu,dc=z v=16i", 1'000) == Rejection::none);   // neither: the measurement alone
  CHECK(k.add("cpu v=32i", 1'000) == Rejection::none);
  CHECK(k.add("mem,host=a v=64i", 1'000) == Rejection::none);
  CHECK(k.add("cpu,region=us v=128i", 1'000) == Rejection::none);
  CHECK(k.w.open_keys() == 5);
  CHECK(k.w.open_pairs() == 5);
  CHECK(k.w.open_windows() == 1);
  k.w.advance(10'000);
  CHECK(k.emit_sorted() ==
        "cpu v_sum=48i 10000\n"
        "cpu,host=a,region=eu v_sum=7i 10000\n"
        "cpu,host=b v_sum=8i 10000\n"
        "cpu,region=us v_sum=128i 10000\n"
        "mem,host=a v_sum=64i 10000\n");
}

TEST_CASE("keyed: without group_by every tag is dropped, one key per measurement", "[keyed]") {
  Keyed k(processing_time());
  CHECK(k.add("cpu,host=a v=1i", 5) == Rejection::none);
  CHECK(k.add("cpu,host=b v=2i", 5) == Rejection::none);
  CHECK(k.add("disk,host=b v=3i", 5) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit_sorted() == "cpu v_sum=3i 10000\ndisk v_sum=3i 10000\n");
}

TEST_CASE("keyed: point.tags are merged with the group_by tags in key order", "[keyed]") {
  KeyedSettings s = processing_time({"region", "host"});
  s.tags = {{"z", "3"}, {"a_static", "1"}, {"i", "2"}};
  Keyed k(s);
  CHECK(k.add("cpu,region=eu,host=h,other=o v=1i", 0) == Rejection::none);
  CHECK(k.add("cpu,other=o v=2i", 0) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit_sorted() ==
        "cpu,a_static=1,host=h,i=2,region=eu,z=3 v_sum=1i 10000\n"
        "cpu,a_static=1,i=2,z=3 v_sum=2i 10000\n");
}

TEST_CASE("keyed: point.measurement replaces the input's, which leaves the key", "[keyed]") {
  KeyedSettings s = processing_time({"host"});
  s.measurement = "agg";
  Keyed k(s);
  CHECK(k.add("cpu,host=a v=1i", 0) == Rejection::none);
  CHECK(k.add("mem,host=a v=2i", 0) == Rejection::none);
  CHECK(k.add("disk v=4i", 0) == Rejection::none);
  CHECK(k.w.open_keys() == 2);
  // Field types are per output measurement: cpu's and mem's `v` are one field now.
  CHECK(k.add("net,host=a v=0.5", 0) == Rejection::type_conflict);
  k.w.advance(10'000);
  CHECK(k.emit_sorted() == "agg v_sum=4i 10000\nagg,host=a v_sum=3i 10000\n");
}

// ---------------------------------------------------------------------------------------------
// The text of the points

TEST_CASE("keyed: integer fields, every aggregate, in the configured order", "[keyed]") {
  auto [aggregates, expected] = GENERATE(table<std::vector<Aggregate>, std::string>({
      {kAllAggregates, "m v_sum=7i,v_count=3i,v_min=1i,v_max=4i,v_mean=2.3333333333333335 10000\n"},
      {{Aggregate::max, Aggregate::sum}, "m v_max=4i,v_sum=7i 10000\n"},
      {{Aggregate::mean}, "m v_mean=2.3333333333333335 10000\n"},
      {{Aggregate::count}, "m v_count=3i 10000\n"},
  }));
  KeyedSettings s = processing_time();
  s.aggregates = aggregates;
  Keyed k(s);
  CHECK(k.add("m v=1i", 0) == Rejection::none);
  CHECK(k.add("m v=2u", 0) == Rejection::none);  // unsigned values are integers
  CHECK(k.add("m v=4i", 0) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit() == expected);
}

TEST_CASE("keyed: float fields: floats throughout, count an integer", "[keyed]") {
  KeyedSettings s = processing_time();
  s.aggregates = kAllAggregates;
  Keyed k(s);
  CHECK(k.add("m f=1.5", 0) == Rejection::none);
  CHECK(k.add("m f=-0.25", 0) == Rejection::none);
  CHECK(k.add("m f=2", 0) == Rejection::none);  // no suffix: a float
  k.w.advance(10'000);
  CHECK(k.emit() ==
        "m f_sum=3.25,f_count=3i,f_min=-0.25,f_max=2,f_mean=1.0833333333333333 10000\n");
}

TEST_CASE("keyed: fields in the order they first came to the pair, timestamp = window end",
          "[keyed]") {
  Keyed k(processing_time());
  CHECK(k.add("m a=1i,b=2.5", 25'000) == Rejection::none);
  CHECK(k.add("m c=3i,b=0.5", 26'000) == Rejection::none);
  CHECK(k.add("m a=-2i", 29'999) == Rejection::none);
  k.w.advance(29'999);
  CHECK(k.emit().empty());
  k.w.advance(30'000);
  CHECK(k.emit() == "m a_sum=-1i,b_sum=3,c_sum=3i 30000\n");
}

TEST_CASE("keyed: spaces, commas and = are escaped in names and tag values", "[keyed]") {
  KeyedSettings s = processing_time({"ho st", "k,=y"});
  s.tags = {{"st=at ic", "v a,l=ue"}};
  Keyed k(s);
  CHECK(k.add(R"(my\ cpu\,x=1,ho\ st=a\,b\=c\ d,k\,\=y=1 f\ 1\=\,=1i,g=2i)", 0) == Rejection::none);
  k.w.advance(10'000);
  CHECK(
      k.emit() ==
      R"(my\ cpu\,x=1,ho\ st=a\,b\=c\ d,k\,\=y=1,st\=at\ ic=v\ a\,l\=ue f\ 1\=\,_sum=1i,g_sum=2i 10000)"
      "\n");
}

TEST_CASE("keyed: a measurement given in point.measurement is escaped too", "[keyed]") {
  KeyedSettings s = processing_time();
  s.measurement = "a b,c=d";
  Keyed k(s);
  CHECK(k.add("m v=1i", 0) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit() == "a\\ b\\,c=d v_sum=1i 10000\n");
}

// ---------------------------------------------------------------------------------------------
// Fields

TEST_CASE("keyed: window.fields selects the fields aggregated", "[keyed]") {
  KeyedSettings s = processing_time();
  s.fields = {"c", "a", "s"};
  Keyed k(s);
  CHECK(k.add("m a=1i,b=2i,c=3.5,s=\"x\",t=true", 0) == Rejection::none);
  CHECK(k.add("m b=2i", 0) == Rejection::no_numeric_field);
  CHECK(k.add("m s=\"text\"", 0) == Rejection::no_numeric_field);  // selected, but a string
  k.w.advance(10'000);
  CHECK(k.emit() == "m a_sum=1i,c_sum=3.5 10000\n");
  CHECK(ChangesView(k.w.changes()).types ==
        Types{{"m", "a", false}, {"m", "c", true}});  // b never got a type
}

TEST_CASE("keyed: strings and booleans are ignored, a line of them alone is no_numeric_field",
          "[keyed]") {
  Keyed k(processing_time());
  CHECK(k.add("m s=\"x\",t=true,v=1i,u=F", 0) == Rejection::none);
  CHECK(k.add("m s=\"x\",t=true", 0) == Rejection::no_numeric_field);
  CHECK(k.add("n s=\"only\"", 0) == Rejection::no_numeric_field);
  CHECK(k.w.open_pairs() == 1);
  CHECK(k.w.open_keys() == 1);
  k.w.advance(10'000);
  CHECK(k.emit() == "m v_sum=1i 10000\n");
}

TEST_CASE("keyed: a type conflict rejects the whole line and changes nothing", "[keyed]") {
  Keyed k(processing_time({"host"}));
  CHECK(k.add("m,host=a a=1i", 0) == Rejection::none);
  k.w.saved();
  // b is new, a conflicts: neither is taken, no pair opens, b gets no type.
  CHECK(k.add("m,host=b b=7i,a=2.5", 0) == Rejection::type_conflict);
  CHECK(k.add("m,host=a a=2.5", 0) == Rejection::type_conflict);
  CHECK(k.add("m,host=a a=1e3", 0) == Rejection::type_conflict);
  CHECK(k.w.open_pairs() == 1);
  CHECK(k.w.open_keys() == 1);
  const ChangesView nothing(k.w.changes());
  CHECK(nothing.pairs.empty());
  CHECK(nothing.types.empty());
  CHECK(k.add("m,host=a b=1.5", 0) == Rejection::none);  // b is free to be a float
  CHECK(k.add("m,host=a a=3u", 0) == Rejection::none);   // unsigned: an integer
  CHECK(k.add("n a=0.5", 0) == Rejection::none);         // another measurement, another field
  k.w.advance(10'000);
  CHECK(k.emit_sorted() == "m,host=a a_sum=4i,b_sum=1.5 10000\nn a_sum=0.5 10000\n");
  // The type outlives the window.
  CHECK(k.w.open_pairs() == 0);
  CHECK(k.add("m,host=a a=1.0", 10'000) == Rejection::type_conflict);
  CHECK(k.add("m,host=a b=1i", 10'000) == Rejection::type_conflict);
  CHECK(k.add("n a=2i", 10'000) == Rejection::type_conflict);
  CHECK(k.w.open_pairs() == 0);
}

TEST_CASE("keyed: unsigned values up to int64 are integers, above is out_of_range", "[keyed]") {
  KeyedSettings s = processing_time();
  s.aggregates = {Aggregate::sum, Aggregate::max};
  Keyed k(s);
  CHECK(k.add("m a=1i,b=9223372036854775808u", 0) == Rejection::out_of_range);
  CHECK(k.add("m b=18446744073709551615u", 0) == Rejection::out_of_range);
  CHECK(k.w.open_pairs() == 0);
  CHECK(ChangesView(k.w.changes()).types.empty());
  CHECK(k.add("m b=9223372036854775807u", 0) == Rejection::none);
  CHECK(k.add("m b=0u", 0) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit() == "m b_sum=9223372036854775807i,b_max=9223372036854775807i 10000\n");
}

TEST_CASE("keyed: integer sums are exact in 128 bits, outside int64 they are clamped and flagged",
          "[keyed]") {
  KeyedSettings s = processing_time({"k"});
  s.aggregates = {Aggregate::sum, Aggregate::count, Aggregate::mean};
  Keyed k(s);
  // Over and back: exact, not flagged.
  CHECK(k.add("m,k=back v=9223372036854775807i", 0) == Rejection::none);
  CHECK(k.add("m,k=back v=9223372036854775807i", 0) == Rejection::none);
  CHECK(k.add("m,k=back v=-9223372036854775807i", 0) == Rejection::none);
  // Above int64.
  CHECK(k.add("m,k=high v=9223372036854775807i,w=1i", 0) == Rejection::none);
  CHECK(k.add("m,k=high v=1i,w=2i", 0) == Rejection::none);
  // Below int64.
  CHECK(k.add("m,k=low v=-9223372036854775808i", 0) == Rejection::none);
  CHECK(k.add("m,k=low v=-9223372036854775808i", 0) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit_sorted() ==
        "m,k=back v_sum=9223372036854775807i,v_count=3i,v_mean=3074457345618258432 10000\n"
        "m,k=high v_sum=9223372036854775807i,v_count=2i,v_mean=4611686018427387904,"
        "v_sum_saturated=true,w_sum=3i,w_count=2i,w_mean=1.5 10000\n"
        "m,k=low v_sum=-9223372036854775808i,v_count=2i,v_mean=-9223372036854775808,"
        "v_sum_saturated=true 10000\n");
  CHECK(k.w.counters().sums_saturated == 2);
}

TEST_CASE("keyed: a float sum beyond double is clamped and flagged", "[keyed]") {
  KeyedSettings s = processing_time();
  s.aggregates = {Aggregate::sum, Aggregate::mean};
  Keyed k(s);
  CHECK(k.add("m f=1e308,g=-1e308", 0) == Rejection::none);
  CHECK(k.add("m f=1e308,g=-1e308", 0) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit() ==
        "m f_sum=1.7976931348623157e+308,f_mean=1.7976931348623157e+308,f_sum_saturated=true,"
        "g_sum=-1.7976931348623157e+308,g_mean=-1.7976931348623157e+308,g_sum_saturated=true"
        " 10000\n");
  CHECK(k.w.counters().sums_saturated == 1);
}

// ---------------------------------------------------------------------------------------------
// Event time

TEST_CASE("keyed: event time in ns, us, ms and s, before and after the epoch", "[keyed]") {
  const auto [precision, timestamp, end] = GENERATE(table<Precision, std::string, TimeMs>({
      {Precision::ns, " 1700000005123000000", 1'700'000'010'000},
      {Precision::ns, " 1700000009999999999", 1'700'000'010'000},
      {Precision::ns, " 1700000010000000000", 1'700'000'020'000},
      {Precision::us, " 1700000005123456", 1'700'000'010'000},
      {Precision::us, " 1700000010000000", 1'700'000'020'000},
      {Precision::ms, " 1700000005123", 1'700'000'010'000},
      {Precision::ms, " 1700000009999", 1'700'000'010'000},
      {Precision::s, " 1700000005", 1'700'000'010'000},
      {Precision::s, " 1700000010", 1'700'000'020'000},
      {Precision::ns, " 0", 10'000},
      {Precision::ns, " -1", 0},
      {Precision::ns, " -10000000000", 0},
      {Precision::ns, " -10000000001", -10'000},
      {Precision::us, " -10000000", 0},
      {Precision::us, " -10000001", -10'000},
      {Precision::ms, " -10000", 0},
      {Precision::ms, " -10001", -10'000},
      {Precision::s, " -10", 0},
      {Precision::s, " -11", -10'000},
      {Precision::s, " -1700000005", -1'700'000'000'000},
      {Precision::ns, "", 2'000'000'010'000},  // no timestamp: the window of `now`
  }));
  CAPTURE(static_cast<int>(precision), timestamp);
  KeyedSettings s = event_time();
  s.precision = precision;
  s.idle_timeout_ms = 1;
  Keyed k(s);
  const TimeMs now = 2'000'000'000'000;
  CHECK(k.add("m v=1i" + timestamp, now) == Rejection::none);
  CHECK(k.emit().empty());
  k.w.advance(now + 20'000);  // idle: the watermark follows the clock past every window
  CHECK(k.emit() == "m v_sum=1i " + std::to_string(end) + "\n");
}

TEST_CASE("keyed: the watermark trails the newest event by max_out_of_orderness", "[keyed]") {
  KeyedSettings s = event_time();
  s.max_out_of_orderness_ms = 5'000;
  Keyed k(s);
  const TimeMs now = 100'000;
  CHECK(k.w.watermark() == kMinTime);
  CHECK(k.add("m v=1i 1000", now) == Rejection::none);
  CHECK(k.w.watermark() == -4'000);
  CHECK(k.add("m v=2i 12000", now) == Rejection::none);
  CHECK(k.w.watermark() == 7'000);
  CHECK(k.emit().empty());
  CHECK(k.add("m v=4i 8000", now) == Rejection::none);  // out of order, its window still open
  CHECK(k.w.watermark() == 7'000);                      // never moves back
  CHECK(k.add("m v=64i 9999", now) == Rejection::none);
  CHECK(k.emit().empty());
  CHECK(k.add("m v=8i 14999", now) == Rejection::none);
  CHECK(k.emit().empty());
  CHECK(k.add("m v=16i 15000", now) == Rejection::none);
  CHECK(k.w.watermark() == 10'000);
  CHECK(k.emit() == "m v_sum=69i 10000\n");
  CHECK(k.w.counters().points_emitted == 1);
  CHECK(k.w.counters().windows_dropped == 1);  // no lateness: dropped at once
  CHECK(k.w.open_windows() == 1);
  CHECK(k.w.open_pairs() == 1);
  // Too late now: nothing changes.
  CHECK(k.add("m v=32i 9999", now) == Rejection::too_late);
  CHECK(k.add("m,other=x w=1.5 0", now) == Rejection::too_late);
  CHECK(k.w.open_windows() == 1);
  CHECK(k.w.open_pairs() == 1);
  CHECK(ChangesView(k.w.changes()).types == Types{{"m", "v", false}});
  CHECK(k.emit().empty());
  CHECK(k.add("m v=1i 25000", now) == Rejection::none);
  CHECK(k.emit() == "m v_sum=26i 20000\n");
}

TEST_CASE("keyed: a late value within allowed_lateness updates the window, emitted again",
          "[keyed]") {
  KeyedSettings s = event_time({"host"});
  s.allowed_lateness_ms = 5'000;
  s.aggregates = {Aggregate::sum, Aggregate::count};
  Keyed k(s);
  const TimeMs now = 100'000;
  CHECK(k.add("m,host=a v=1i 1000", now) == Rejection::none);
  CHECK(k.add("m,host=b v=1i 2000", now) == Rejection::none);
  CHECK(k.add("m,host=a v=2i 10000", now) == Rejection::none);
  CHECK(k.emit_sorted() ==
        "m,host=a v_sum=1i,v_count=1i 10000\nm,host=b v_sum=1i,v_count=1i 10000\n");
  CHECK(k.w.counters().points_emitted == 2);
  CHECK(k.emit().empty());  // nothing changed: nothing emitted again
  CHECK(k.w.open_windows() == 2);

  CHECK(k.add("m,host=a v=4i 3000", now) == Rejection::none);  // late, within lateness
  CHECK(k.add("m,host=c v=8i 9999", now) == Rejection::none);  // late, a new pair
  CHECK(k.add("m,host=a v=16i 14999", now) == Rejection::none);
  // Only the changed pairs come again; the second window is not due yet.
  CHECK(k.emit_sorted() ==
        "m,host=a v_sum=5i,v_count=2i 10000\nm,host=c v_sum=8i,v_count=1i 10000\n");
  CHECK(k.w.counters().points_emitted == 3);
  CHECK(k.w.counters().points_updated == 1);
  CHECK(k.w.counters().windows_dropped == 0);

  CHECK(k.add("m,host=b v=1i 15000", now) == Rejection::none);  // the watermark reaches 15000
  CHECK(k.add("m,host=b v=32i 9999", now) == Rejection::too_late);
  CHECK(k.emit().empty());
  CHECK(k.w.counters().windows_dropped == 1);
  CHECK(k.w.open_windows() == 1);
  CHECK(k.w.open_pairs() == 2);
  CHECK(k.add("m,host=a v=32i 0", now) == Rejection::too_late);
  CHECK(k.add("m,host=d v=32i 5000", now) == Rejection::too_late);
  CHECK(k.w.open_pairs() == 2);
  CHECK(k.add("m v=1i 20000", now) == Rejection::none);
  CHECK(k.emit_sorted() ==
        "m,host=a v_sum=18i,v_count=2i 20000\nm,host=b v_sum=1i,v_count=1i 20000\n");
  CHECK(k.w.counters().points_emitted == 5);
  CHECK(k.w.counters().points_updated == 1);
}

TEST_CASE("keyed: after idle_timeout without a line the watermark follows the clock", "[keyed]") {
  KeyedSettings s = event_time();
  s.max_out_of_orderness_ms = 2'000;
  s.idle_timeout_ms = 30'000;
  Keyed k(s);
  // Idle counts from the first advance, not from the epoch.
  k.w.advance(100);
  k.w.advance(30'099);
  CHECK(k.w.watermark() == kMinTime);
  k.w.advance(30'100);
  CHECK(k.w.watermark() == 28'100);

  CHECK(k.add("m v=1i 35000", 36'000) == Rejection::none);
  CHECK(k.w.watermark() == 33'000);
  k.w.advance(65'999);  // 29.999 s since the line
  CHECK(k.w.watermark() == 33'000);
  CHECK(k.emit().empty());
  k.w.advance(66'000);
  CHECK(k.w.watermark() == 64'000);
  CHECK(k.emit() == "m v_sum=1i 40000\n");
  // A line that is rejected does not count as input.
  CHECK(k.add("m v=1i 1000", 70'000) == Rejection::too_late);
  k.w.advance(96'000);
  CHECK(k.w.watermark() == 94'000);
}

TEST_CASE("keyed: idle_timeout 0 never moves the watermark by the clock", "[keyed]") {
  Keyed k(event_time());
  CHECK(k.add("m v=1i 5000", 6'000) == Rejection::none);
  k.w.advance(6'000'000'000);
  CHECK(k.w.watermark() == 5'000);
  CHECK(k.emit().empty());
}

TEST_CASE("keyed: an event time beyond now + max_future is rejected", "[keyed]") {
  KeyedSettings s = event_time();
  s.max_future_ms = 60'000;
  Keyed k(s);
  CHECK(k.add("m v=1i 160001", 100'000) == Rejection::too_far_in_future);
  CHECK(k.w.watermark() == kMinTime);
  CHECK(k.w.open_pairs() == 0);
  CHECK(k.add("m v=1i 160000", 100'000) == Rejection::none);
  CHECK(k.w.watermark() == 160'000);
  CHECK(k.add("m v=1i 9223372036854775807", 100'000) == Rejection::too_far_in_future);
  KeyedSettings seconds = s;
  seconds.precision = Precision::s;
  Keyed ks(seconds);  // beyond the ms range: clamped, then too far
  CHECK(ks.add("m v=1i 9223372036854775807", 100'000) == Rejection::too_far_in_future);
  CHECK(ks.add("m v=1i 9223372036854776", 100'000) == Rejection::too_far_in_future);
  CHECK(ks.w.open_pairs() == 0);
}

// A timestamp so far before the epoch that its window's start is below the int64 range (here
// seconds: -9223372036854775 s is -9223372036854775000 ms, in a window starting at
// -9223372036854780000). Whatever KeyedWindows does with it, the line must not hold a pair that
// no watermark ever closes, or such lines fill max_keys for good.
TEST_CASE("keyed: a timestamp near the int64 minimum does not hold a pair forever", "[keyed]") {
  const auto [precision, timestamp] = GENERATE(table<Precision, std::string>({
      {Precision::s, "-9223372036854775"},
      {Precision::s, "-9223372036854775808"},  // clamped to the smallest ms
      {Precision::ms, "-9223372036854775808"},
      {Precision::ms, "-9223372036854770001"},
  }));
  CAPTURE(static_cast<int>(precision), timestamp);
  KeyedSettings s = event_time();
  s.precision = precision;
  s.max_keys = 1;
  s.idle_timeout_ms = 1'000;
  Keyed k(s);
  const Rejection first = k.add("m v=1i " + timestamp, 0);
  CAPTURE(first);
  std::string windows;
  for (const auto& pair : k.w.changes().pairs) windows += std::to_string(pair.start) + " ";
  CAPTURE(windows);
  k.w.advance(1'000);  // idle: the watermark is the clock, 1000
  const std::string points = k.emit();
  CAPTURE(points);
  CHECK(k.w.open_pairs() == 0);
  CHECK(k.add("m v=1i", 1'000) == Rejection::none);  // the window of now
}

TEST_CASE("keyed: a time InfluxDB cannot store is out_of_range, one just inside is kept",
          "[keyed]") {
  // InfluxDB stores int64 nanoseconds: about +-9223372036854 s in ms.
  const auto [precision, timestamp, expected, end] =
      GENERATE(table<Precision, std::string, Rejection, std::string>({
          {Precision::ms, "-9223372036855000", Rejection::out_of_range, ""},
          {Precision::ms, "-9223372036854775808", Rejection::out_of_range, ""},
          {Precision::s, "-9223372036855", Rejection::out_of_range, ""},
          {Precision::s, "-9223372036854775808", Rejection::out_of_range, ""},
          {Precision::ms, "-9223372000000", Rejection::none, "-9223371990000"},
          {Precision::s, "-9223372000", Rejection::none, "-9223371990000"},
          {Precision::ns, "-9223372036854775808", Rejection::out_of_range, ""},
          {Precision::ns, "-9223372000000000000", Rejection::none, "-9223371990000"},
      }));
  CAPTURE(static_cast<int>(precision), timestamp);
  KeyedSettings s = event_time();
  s.precision = precision;
  s.idle_timeout_ms = 1;
  Keyed k(s);
  CHECK(k.add("m v=1i " + timestamp, 0) == expected);
  k.w.advance(1);
  CHECK(k.emit() == (end.empty() ? "" : "m v_sum=1i " + end + "\n"));
  CHECK(k.w.open_pairs() == 0);
}

// ---------------------------------------------------------------------------------------------
// Processing time

TEST_CASE("keyed: processing time: the window of now, a clock stepping back never reopens",
          "[keyed]") {
  Keyed k(processing_time());
  CHECK(k.add("m v=1i 999999999999", 12'345) == Rejection::none);  // the timestamp is ignored
  CHECK(k.w.watermark() == 12'345);
  CHECK(k.emit().empty());
  k.w.advance(19'999);
  CHECK(k.emit().empty());
  k.w.advance(20'000);
  CHECK(k.emit() == "m v_sum=1i 20000\n");
  CHECK(k.w.open_windows() == 0);
  // The clock steps back into the closed window: the line goes to the oldest open one.
  CHECK(k.add("m v=2i", 15'000) == Rejection::none);
  CHECK(k.w.watermark() == 20'000);
  CHECK(k.emit().empty());
  CHECK(k.add("m v=4i", 21'000) == Rejection::none);
  k.w.advance(5'000);  // back again: the watermark stays
  CHECK(k.w.watermark() == 21'000);
  CHECK(k.add("m v=8i", 5'000) == Rejection::none);
  k.w.advance(29'999);
  CHECK(k.emit().empty());
  k.w.advance(30'000);
  CHECK(k.emit() == "m v_sum=14i 30000\n");
  CHECK(k.w.counters().points_emitted == 2);
  CHECK(k.w.counters().points_updated == 0);
  CHECK(k.add("m v=16i", 1'000) == Rejection::none);
  k.w.advance(40'000);
  CHECK(k.emit() == "m v_sum=16i 40000\n");
  CHECK(k.w.counters().points_updated == 0);
}

TEST_CASE("keyed: several windows due at once come oldest first", "[keyed]") {
  Keyed k(processing_time({"h"}));
  CHECK(k.add("m,h=a v=1i", 1'000) == Rejection::none);
  CHECK(k.add("m,h=a v=2i", 11'000) == Rejection::none);
  CHECK(k.add("m,h=b v=3i", 11'000) == Rejection::none);
  CHECK(k.add("m,h=a v=4i", 25'000) == Rejection::none);
  CHECK(k.w.open_windows() == 3);
  k.w.advance(30'000);
  const std::string out = k.emit();
  // Windows in order; within one, any key order.
  REQUIRE(out.size() > 21);
  CHECK(out.substr(0, 21) == "m,h=a v_sum=1i 10000\n");
  CHECK(sorted_lines(out) ==
        "m,h=a v_sum=1i 10000\nm,h=a v_sum=2i 20000\nm,h=a v_sum=4i 30000\n"
        "m,h=b v_sum=3i 20000\n");
  CHECK(out.substr(out.size() - 21) == "m,h=a v_sum=4i 30000\n");
  CHECK(k.w.open_windows() == 0);
  CHECK(k.w.open_keys() == 0);
}

// ---------------------------------------------------------------------------------------------
// Bounds

TEST_CASE("keyed: max_keys bounds the open pairs, existing ones keep aggregating", "[keyed]") {
  KeyedSettings s = processing_time({"host"});
  s.max_keys = 2;
  Keyed k(s);
  CHECK(k.add("m,host=a v=1i", 1'000) == Rejection::none);
  CHECK(k.add("m,host=b v=2i", 1'000) == Rejection::none);
  CHECK(k.add("m,host=c v=4i", 1'000) == Rejection::too_many_keys);
  CHECK(k.add("m,host=a v=8i", 1'000) == Rejection::none);
  CHECK(k.add("m,host=b v=16i", 1'000) == Rejection::none);
  CHECK(k.w.open_pairs() == 2);
  CHECK(k.w.open_keys() == 2);
  k.w.advance(10'000);
  CHECK(k.emit_sorted() == "m,host=a v_sum=9i 10000\nm,host=b v_sum=18i 10000\n");
  CHECK(k.w.open_pairs() == 0);
  CHECK(k.add("m,host=c v=4i", 10'500) == Rejection::none);  // room again
  CHECK(k.add("m,host=a v=1i", 10'500) == Rejection::none);
  CHECK(k.add("m,host=b v=1i", 10'500) == Rejection::too_many_keys);
  k.w.advance(20'000);
  CHECK(k.emit_sorted() == "m,host=a v_sum=1i 20000\nm,host=c v_sum=4i 20000\n");
}

TEST_CASE("keyed: max_keys counts (key, window) pairs, not keys", "[keyed]") {
  KeyedSettings s = event_time();
  s.max_keys = 2;
  s.max_out_of_orderness_ms = 100'000;
  Keyed k(s);
  CHECK(k.add("m v=1i 1000", 100'000) == Rejection::none);
  CHECK(k.add("m v=1i 11000", 100'000) == Rejection::none);
  CHECK(k.add("m v=1i 21000", 100'000) == Rejection::too_many_keys);
  CHECK(k.w.open_keys() == 1);
  CHECK(k.w.open_pairs() == 2);
  CHECK(k.w.open_windows() == 2);
}

TEST_CASE("keyed: field types are bounded by max_keys too", "[keyed]") {
  KeyedSettings s = processing_time();
  s.max_keys = 2;
  Keyed k(s);
  CHECK(k.add("m a=1i,b=2i,c=3i", 0) == Rejection::too_many_keys);
  CHECK(ChangesView(k.w.changes()).types.empty());
  CHECK(k.w.open_pairs() == 0);
  CHECK(k.add("m a=1i,b=2i", 0) == Rejection::none);
  CHECK(k.add("m a=1i,c=2i", 0) == Rejection::too_many_keys);
  CHECK(k.add("m a=5i", 0) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit() == "m a_sum=6i,b_sum=2i 10000\n");
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

TEST_CASE("keyed: changes() lists what changed since saved()", "[keyed]") {
  KeyedSettings s = event_time({"host"});
  s.allowed_lateness_ms = 5'000;
  Keyed k(s);
  const TimeMs now = 100'000;
  {
    const ChangesView c(k.w.changes());
    CHECK(c.pairs.empty());
    CHECK(c.dropped.empty());
    CHECK(c.types.empty());
    CHECK(c.watermark == kMinTime);
    CHECK(c.newest_event == kMinTime);
  }
  CHECK(k.add("m,host=a v=1i 1000", now) == Rejection::none);
  CHECK(k.add("m,host=b w=2.5 2000", now) == Rejection::none);
  CHECK(k.add("m,host=a v=1i,w=1.5 3000", now) == Rejection::none);
  {
    const ChangesView c(k.w.changes());
    CHECK(c.pair_names() == PairNames{{0, "m,host=a"}, {0, "m,host=b"}});
    CHECK(c.types == Types{{"m", "v", false}, {"m", "w", true}});
    CHECK(c.dropped.empty());
    CHECK(c.watermark == 3'000);
    CHECK(c.newest_event == 3'000);
    // changes() itself changes nothing.
    CHECK(ChangesView(k.w.changes()).pairs == c.pairs);
  }
  k.w.saved();
  {
    const ChangesView c(k.w.changes());
    CHECK(c.pairs.empty());
    CHECK(c.types.empty());
    CHECK(c.watermark == 3'000);
  }
  CHECK(k.add("m,host=b w=1.0 4000", now) == Rejection::none);
  CHECK(k.add("m,host=b w=1.0 4001", now) == Rejection::none);
  CHECK(k.add("n x=1i 12000", now) == Rejection::none);
  CHECK(k.emit_sorted() == "m,host=a v_sum=2i,w_sum=1.5 10000\nm,host=b w_sum=4.5 10000\n");
  {
    const ChangesView c(k.w.changes());
    CHECK(c.pair_names() == PairNames{{0, "m,host=b"}, {10'000, "n"}});
    CHECK(c.types == Types{{"n", "x", false}});
    CHECK(c.dropped.empty());
    CHECK(c.watermark == 12'000);
    CHECK(c.newest_event == 12'000);
  }
  k.w.saved();
  CHECK(k.add("n x=1i 15000", now) == Rejection::none);  // drops window 0 at the next emit
  CHECK(k.add("m,host=a v=7i 5000", now) == Rejection::too_late);
  k.emit();
  {
    const ChangesView c(k.w.changes());
    CHECK(c.pair_names() == PairNames{{10'000, "n"}});
    CHECK(c.dropped == std::vector<TimeMs>{0});
    CHECK(c.types.empty());
    CHECK(c.watermark == 15'000);
  }
  k.w.saved();
  CHECK(ChangesView(k.w.changes()).dropped.empty());
}

TEST_CASE("keyed: the pairs of a window dropped before a checkpoint are not listed", "[keyed]") {
  Keyed k(processing_time());
  CHECK(k.add("m v=1i", 1'000) == Rejection::none);
  k.w.advance(10'000);
  CHECK(k.emit() == "m v_sum=1i 10000\n");
  const ChangesView c(k.w.changes());
  CHECK(c.pairs.empty());
  CHECK(c.dropped == std::vector<TimeMs>{0});
  CHECK(c.types == Types{{"m", "v", false}});
  CHECK(c.watermark == 10'000);
}

namespace {

struct Step {
  std::string line;  // empty: none
  TimeMs now;
};

// Adds the line of each step, then advances to its now and emits; returns the emitted points,
// sorted, one string per step.
std::vector<std::string> run(Keyed& k, const std::vector<Step>& steps) {
  std::vector<std::string> out;
  for (const auto& step : steps) {
    if (!step.line.empty()) {
      INFO("line " << step.line);
      CHECK(k.add(step.line, step.now) == Rejection::none);
    }
    k.w.advance(step.now);
    out.push_back(k.emit_sorted());
  }
  return out;
}

}  // namespace

TEST_CASE("keyed: restored from its checkpoints mid-window, it continues identically", "[keyed]") {
  KeyedSettings s = event_time({"host"});
  s.max_out_of_orderness_ms = 1'000;
  s.allowed_lateness_ms = 5'000;
  s.aggregates = kAllAggregates;
  s.tags = {{"src", "t"}};
  const TimeMs now = 100'000;
  const std::vector<Step> before{
      {"cpu,host=a v=1i,f=0.5 1000", now},
      {"cpu,host=b v=-2i 2000", now},
      {"cpu,host=a v=9223372036854775807i 3000", now},
      {"cpu,host=a v=9223372036854775807i 4000", now},
  };
  const std::vector<Step> after{
      {"cpu,host=a v=3i,f=1.5 9000", now},
      {"cpu,host=a f=2.25 12000", now},  // window 0 due (watermark 11000)
      {"cpu,host=b v=10i 5000", now},    // late, within lateness
      {"mem v=7.25 13000", now},
      {"cpu,host=c v=1i 21000", now},  // window 10000 due, window 0 dropped
      {"mem v=1.5 22000", now},
      {"", now},
  };
  Keyed live(s);
  FakeStore store;
  run(live, {before[0], before[1]});
  store.checkpoint(live.w);
  run(live, {before[2], before[3]});
  store.checkpoint(live.w);
  CHECK(store.pairs.size() == 2);
  CHECK(store.field_types.size() == 2);

  Keyed restored(s);
  store.restore(restored.w);
  CHECK(restored.w.open_pairs() == live.w.open_pairs());
  CHECK(restored.w.open_keys() == live.w.open_keys());
  CHECK(restored.w.open_windows() == live.w.open_windows());
  CHECK(restored.w.watermark() == live.w.watermark());
  {
    const ChangesView c(restored.w.changes());  // what was restored is saved already
    CHECK(c.pairs.empty());
    CHECK(c.types.empty());
    CHECK(c.dropped.empty());
  }
  // The same input from here on gives the same points and the same checkpoints.
  for (const Step& step : after) {
    const std::vector<std::string> expected = run(live, {step});
    CHECK(run(restored, {step}) == expected);
    const ChangesView a(live.w.changes());
    const ChangesView b(restored.w.changes());
    CHECK(b.pairs == a.pairs);
    CHECK(b.dropped == a.dropped);
    CHECK(b.types == a.types);
    CHECK(b.watermark == a.watermark);
    CHECK(b.newest_event == a.newest_event);
    live.w.saved();
    restored.w.saved();
  }
  // And the points are what they should be.
  Keyed check(s);
  const auto all = run(check, [&] {
    auto steps = before;
    steps.insert(steps.end(), after.begin(), after.end());
    return steps;
  }());
  CHECK(all[5] ==
        "cpu,host=a,src=t v_sum=9223372036854775807i,v_count=4i,v_min=1i,"
        "v_max=9223372036854775807i,v_mean=4611686018427387904,v_sum_saturated=true,f_sum=2,"
        "f_count=2i,f_min=0.5,f_max=1.5,f_mean=1 10000\n"
        "cpu,host=b,src=t v_sum=-2i,v_count=1i,v_min=-2i,v_max=-2i,v_mean=-2 10000\n");
  CHECK(all[6] == "cpu,host=b,src=t v_sum=8i,v_count=2i,v_min=-2i,v_max=10i,v_mean=4 10000\n");
  CHECK(all[8] ==
        "cpu,host=a,src=t f_sum=2.25,f_count=1i,f_min=2.25,f_max=2.25,f_mean=2.25 20000\n"
        "mem,src=t v_sum=7.25,v_count=1i,v_min=7.25,v_max=7.25,v_mean=7.25 20000\n");
}

TEST_CASE("keyed: a restored window the watermark has passed is emitted again", "[keyed]") {
  KeyedSettings s = event_time({"host"});
  s.allowed_lateness_ms = 10'000;
  const TimeMs now = 100'000;
  Keyed live(s);
  FakeStore store;
  CHECK(live.add("m,host=a v=1i 1000", now) == Rejection::none);
  CHECK(live.add("m,host=b w=2.5 2000", now) == Rejection::none);
  CHECK(live.add("m,host=a v=3i 12000", now) == Rejection::none);
  const std::string first = live.emit_sorted();
  CHECK(first == "m,host=a v_sum=1i 10000\nm,host=b w_sum=2.5 10000\n");
  store.checkpoint(live.w);

  Keyed restored(s);
  store.restore(restored.w);
  CHECK(restored.emit_sorted() == first);  // the same points: InfluxDB overwrites them
  CHECK(restored.emit().empty());
  // Late values still update the restored window.
  CHECK(restored.add("m,host=b w=0.5 3000", now) == Rejection::none);
  CHECK(restored.emit() == "m,host=b w_sum=3 10000\n");
  CHECK(restored.add("m,host=a v=1i 15000", now) == Rejection::none);
  CHECK(restored.emit().empty());
  CHECK(restored.add("m,host=c v=1i 20000", now) == Rejection::none);
  CHECK(restored.emit() == "m,host=a v_sum=4i 20000\n");
  CHECK(restored.w.open_windows() == 2);
  CHECK(restored.add("m,host=a v=1i 9999", now) == Rejection::too_late);
}

TEST_CASE("keyed: restore_pair refuses values changes() does not write", "[keyed]") {
  KeyedSettings s = processing_time();
  Keyed source(s);
  CHECK(source.add("mm a=1i,bb=2i", 0) == Rejection::none);
  const KeyedChanges c = source.w.changes();
  REQUIRE(c.pairs.size() == 1);
  const std::string good = c.pairs[0].value;
  const std::string key(c.pairs[0].key);
  CHECK(key == "mm");
  // Layout: measurement (8-byte length, bytes), field count, then per field: name, is_float,
  // count, sum low, sum high, min, max; all little-endian 64-bit.
  const std::size_t field_count_at = 8 + 2;
  const std::size_t first_count_at = field_count_at + 8 + 8 + 1 + 8;
  REQUIRE(good.size() == field_count_at + 8 + 2 * (8 + 6 * 8) + 1 + 2);

  const auto with = [&](std::size_t at, std::uint64_t v) {
    std::string out = good;
    std::string bytes;
    put64(bytes, v);
    out.replace(at, 8, bytes);
    return out;
  };
  const auto [name, start, pair_key, value] =
      GENERATE_REF(table<std::string, TimeMs, std::string, std::string>({
          {"truncated", 0, key, good.substr(0, good.size() - 1)},
          {"a byte too many", 0, key, good + "x"},
          {"empty", 0, key, ""},
          {"no fields", 0, key, with(field_count_at, 0)},
          {"too many fields", 0, key, with(field_count_at, 3)},
          {"a huge field count", 0, key, with(field_count_at, ~std::uint64_t{0})},
          {"a huge measurement length", 0, key, with(0, ~std::uint64_t{0} - 4)},
          {"a zero count", 0, key, with(first_count_at, 0)},
          {"a negative count", 0, key, with(first_count_at, ~std::uint64_t{0})},
          {"a window start not on a boundary", 1, key, good},
          {"an empty key", 0, "", good},
      }));
  CAPTURE(name);
  Keyed target(s);
  CHECK_FALSE(target.w.restore_pair(start, pair_key, value));
  CHECK(target.w.open_pairs() == 0);
  CHECK(target.w.open_keys() == 0);
  CHECK(target.w.restore_pair(0, key, good));  // the good one still restores
  CHECK(target.w.open_pairs() == 1);
  target.w.advance(10'000);
  CHECK(target.emit() == "mm a_sum=1i,bb_sum=2i 10000\n");
}

TEST_CASE("keyed: restore_pair refuses a type contradicting a restored one, and a repeat",
          "[keyed]") {
  KeyedSettings s = processing_time();
  Keyed source(s);
  CHECK(source.add("m v=1i", 0) == Rejection::none);
  const std::string value = source.w.changes().pairs.at(0).value;

  Keyed target(s);
  target.w.restore_field_type("m", "v", true);
  CHECK_FALSE(target.w.restore_pair(0, "m", value));
  CHECK(target.w.open_pairs() == 0);
  CHECK(target.add("m v=1.5", 1) == Rejection::none);  // the restored type holds

  Keyed twice(s);
  CHECK(twice.w.restore_pair(10'000, "m", value));
  CHECK_FALSE(twice.w.restore_pair(10'000, "m", value));
  CHECK(twice.w.open_pairs() == 1);
  CHECK(twice.w.open_keys() == 1);
  CHECK(twice.add("m v=2i", 10'000) == Rejection::none);
  twice.w.advance(20'000);
  CHECK(twice.emit() == "m v_sum=3i 20000\n");
}

TEST_CASE("keyed: restore_pair refuses a field listed twice", "[keyed]") {
  KeyedSettings s = processing_time();
  Keyed source(s);
  CHECK(source.add("m v=1i", 0) == Rejection::none);
  const std::string value = source.w.changes().pairs.at(0).value;
  // measurement "m", 1 field: make it 2 fields, the same one twice.
  const std::string field = value.substr(8 + 1 + 8);
  std::string twice = value.substr(0, 8 + 1);
  put64(twice, 2);
  twice += field + field;
  Keyed target(s);
  CHECK_FALSE(target.w.restore_pair(0, "m", twice));
}

TEST_CASE("keyed: restored field types are not listed again, new ones are", "[keyed]") {
  Keyed k(processing_time());
  k.w.restore_field_type("m", "v", false);
  k.w.restore_field_type("m", "f", true);
  CHECK(ChangesView(k.w.changes()).types.empty());
  CHECK(k.add("m v=1.5", 0) == Rejection::type_conflict);
  CHECK(k.add("m f=1i", 0) == Rejection::type_conflict);
  CHECK(k.add("m v=1i,f=0.5,g=2i", 0) == Rejection::none);
  CHECK(ChangesView(k.w.changes()).types == Types{{"m", "g", false}});
}

// Field types are per (measurement, field): a measurement and a field key may hold any byte but
// '\n' unescaped, NUL included, so "a\0b" + "c" and "a" + "b\0c" are different fields.
TEST_CASE("keyed: field types of different (measurement, field) names never mix", "[keyed]") {
  Keyed k(processing_time());
  using namespace std::string_literals;
  CHECK(k.add("a\0b c=1i"s, 0) == Rejection::none);
  CHECK(k.add("a b\0c=2i"s, 0) == Rejection::none);
  CHECK(k.add("a b\0c=2.5"s, 0) == Rejection::type_conflict);
  CHECK(k.add("a\0b c=2.5"s, 0) == Rejection::type_conflict);
  k.w.advance(10'000);
  CHECK(k.emit_sorted() == "a\0b c_sum=1i 10000\na b\0c_sum=2i 10000\n"s);
}

TEST_CASE("keyed: while reading is paused the input does not count as idle", "[keyed]") {
  KeyedSettings s = event_time();
  s.idle_timeout_ms = 30'000;
  Keyed k(s);
  CHECK(k.add("m v=1i 35000", 36'000) == Rejection::none);
  // The pipeline paused reading at 40 s and keeps saying so; lines may wait unread.
  for (TimeMs now = 40'000; now <= 100'000; now += 10'000) {
    k.w.not_idle(now);
    k.w.advance(now);
  }
  CHECK(k.w.watermark() == 35'000);
  CHECK(k.emit().empty());
  // Resumed at 100 s: the waiting line for the open window is still on time.
  CHECK(k.add("m v=2i 39000", 100'500) == Rejection::none);
  k.w.advance(129'999);
  CHECK(k.emit().empty());
  k.w.advance(130'500);  // idle for 30 s since the last line
  CHECK(k.emit() == "m v_sum=3i 40000\n");
}

TEST_CASE("keyed: a line over max_keys still moves the watermark", "[keyed]") {
  // With idle_timeout 0 only lines move the watermark: rejected ones must too, or pairs of
  // windows not due yet could hold max_keys for good.
  KeyedSettings s = event_time({"host"});
  s.max_keys = 2;
  Keyed k(s);
  CHECK(k.add("m,host=a v=1i 1000", 0) == Rejection::none);
  CHECK(k.add("m,host=b v=1i 2000", 0) == Rejection::none);
  CHECK(k.add("m,host=c v=1i 12000", 0) == Rejection::too_many_keys);
  CHECK(k.w.watermark() == 12'000);
  CHECK(k.emit_sorted() == "m,host=a v_sum=1i 10000\nm,host=b v_sum=1i 10000\n");
  CHECK(k.add("m,host=c v=1i 12000", 0) == Rejection::none);  // room again
}

TEST_CASE("keyed: a restored pair's first emission is not an update", "[keyed]") {
  KeyedSettings s = event_time();
  s.allowed_lateness_ms = 10'000;
  Keyed live(s);
  CHECK(live.add("m v=1i 1000", 0) == Rejection::none);
  const auto changes = live.w.changes();
  Keyed back(s);
  for (const auto& type : changes.field_types) {
    back.w.restore_field_type(type.measurement, type.field, type.is_float);
  }
  back.w.restore_time(changes.watermark, changes.newest_event);
  for (const auto& pair : changes.pairs)
    REQUIRE(back.w.restore_pair(pair.start, pair.key, pair.value));
  CHECK(back.add("m v=1i 10000", 0) == Rejection::none);
  CHECK(back.emit() == "m v_sum=1i 10000\n");
  CHECK(back.w.counters().points_emitted == 1);
  CHECK(back.w.counters().points_updated == 0);
  CHECK(back.add("m v=5i 9000", 0) == Rejection::none);  // late, within lateness
  CHECK(back.emit() == "m v_sum=6i 10000\n");
  CHECK(back.w.counters().points_updated == 1);
}

TEST_CASE("keyed: field aggregates are bounded by 16 x max_keys in all", "[keyed]") {
  const auto fields = [](int first, int count) {
    std::string text;
    for (int i = first; i < first + count; ++i) {
      text += (text.empty() ? "" : ",") + std::string("f") + std::to_string(i) + "=1i";
    }
    return text;
  };
  const auto host = [](int i) { return "m,host=h" + std::to_string(i) + " "; };
  KeyedSettings s = processing_time({"host"});
  s.max_keys = 20;  // 20 pairs, 20 field types, 320 field aggregates in all
  Keyed k(s);
  for (int i = 0; i < 15; ++i) CHECK(k.add(host(i) + fields(0, 20), 1'000) == Rejection::none);
  // 300 aggregates open: 20 more make 320, the bound; then not one more.
  CHECK(k.add(host(15) + fields(0, 20), 1'000) == Rejection::none);
  CHECK(k.add(host(16) + fields(0, 1), 1'000) == Rejection::too_many_keys);
  // Existing aggregates keep aggregating.
  CHECK(k.add(host(0) + fields(0, 20), 1'000) == Rejection::none);
  CHECK(k.w.open_pairs() == 16);
  k.w.advance(10'000);
  CHECK_FALSE(k.emit().empty());
  CHECK(k.add(host(16) + fields(0, 20), 10'500) == Rejection::none);  // room again
}
