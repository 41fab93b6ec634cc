// Keyed, event-time windows end to end: the tumbled binary reading `source.format: line_protocol`
// from several TCP clients, a real influxd, and the per-key figures read back through /query.
//
// Every event time lies in the past, on window boundaries chosen from a base ten minutes ago, and
// window.idle_timeout is 0 (except in the two tests that need the timeout, which send what it must
// not cut in one small write): the watermark moves only with the data the tests send, so which
// window a line lands in, and when a window closes, never depends on when or how fast the test
// runs. The tests wait on events (/metrics counters, points acknowledged by InfluxDB), with the
// hang guard as the only deadline; the expected figures are computed from the lines sent. Values
// are integers and floats with few binary digits, so a sum is exact in whatever order the daemon
// adds them.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/influxd.hpp"
#include "support/tcp_feed.hpp"
#include "system/daemon.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The start of the tests' first window: ten minutes ago, on a 10 s boundary.
std::int64_t past_base() {
  return (wall_ms() - 600'000) / 10'000 * 10'000;
}

// A keyed, event-time pipeline named "records" reading line protocol with ms timestamps into
// 1 s windows, grouped by stream and isp, aggregating bytes and rtt; `window_extra` adds keys.
// window.idle_timeout is 0 unless given: only the data moves the watermark.
PipelineSpec keyed_spec(std::uint16_t influx_port, const std::string& window_extra,
                        const std::string& idle_timeout = "0s") {
  PipelineSpec spec;
  spec.influx_port = influx_port;
  spec.window = "1s";
  spec.aggregates = "[sum, count, max]";
  spec.max_line_bytes = 1024;
  spec.source_extra = "format: line_protocol, precision: ms";
  spec.window_extra =
      "time: event, group_by: [stream, isp], fields: [bytes, rtt], idle_timeout: " + idle_timeout +
      ", " + window_extra;
  spec.point = "{measurement: \"\", tags: {}}";
  return spec;
}

// A counter or gauge of pipeline "records".
double metric(std::uint16_t port, const std::string& name, const std::string& labels = "") {
  return pipeline_metric(scrape_metrics(port), name, labels);
}

double rejected(std::uint16_t port, const std::string& reason) {
  return metric(port, "tumbled_lines_rejected_total", ",reason=\"" + reason + "\"");
}

// Waits until the metric is at least `value`; false after the hang guard.
bool metric_reaches(std::uint16_t port, const std::string& name, double value,
                    const std::string& labels = "") {
  return wait_until([&] { return metric(port, name, labels) >= value; }, hang_guard(), 20ms);
}

// Waits until the daemon has emitted `points` points in this run and InfluxDB has acknowledged
// every point it holds.
bool points_landed(std::uint16_t port, double points) {
  return metric_reaches(port, "tumbled_windows_emitted_total", points) &&
         wait_until([&] { return metric(port, "tumbled_points_waiting") == 0; }, hang_guard(),
                    20ms);
}

// Ends the test with the daemon's log unless `ok`: for waits on events that must happen.
void require(bool ok, const Daemon& daemon, const std::string& what) {
  if (!ok) FAIL("waited in vain for " << what << "; log:\n" << daemon.log_text());
}
#define AWAIT(daemon, condition) require((condition), (daemon), #condition)

std::string number(double v) {
  char text[64];
  const auto end = std::to_chars(text, text + sizeof text, v).ptr;
  return std::string(text, end);
}

std::string escape_tag(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == ' ' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

// One input record of measurement `cdn`.
struct Line {
  std::string stream;
  std::string isp;  // "": the line has no isp tag
  std::string host;
  std::optional<std::int64_t> bytes;
  std::optional<double> rtt;
  std::int64_t ts = 0;
  int tag_order = 0;    // 0, 1 or 2: the order the tags are written in
  bool extras = false;  // also carries fields the pipeline ignores (not selected, string)

  // The series InfluxDB should file the point under: its group_by tags, sorted by key.
  std::string series() const {
    return (isp.empty() ? "" : "isp=" + isp + ",") + "stream=" + stream;
  }

  std::string text() const {
    const std::string s = "stream=" + escape_tag(stream);
    const std::string i = isp.empty() ? "" : "isp=" + escape_tag(isp);
    const std::string h = "host=" + escape_tag(host);
    std::vector<std::string> tags;
    switch (tag_order) {
      case 0: tags = {s, i, h}; break;
      case 1: tags = {h, i, s}; break;
      default: tags = {i, h, s}; break;
    }
    std::string out = "cdn";
    for (const auto& t : tags) {
      if (!t.empty()) out += "," + t;
    }
    std::string fields;
    if (bytes) fields += "bytes=" + std::to_string(*bytes) + "i";
    if (rtt) fields += (fields.empty() ? "" : ",") + std::string("rtt=") + number(*rtt);
    if (extras) fields += ",status=200i,note=\"a, b=c\"";
    return out + " " + fields + " " + std::to_string(ts) + "\n";
  }
};

// What InfluxDB should hold for one (key, window).
struct Expected {
  std::int64_t bytes_sum = 0, bytes_count = 0;
  std::int64_t bytes_max = std::numeric_limits<std::int64_t>::min();
  double rtt_sum = 0;
  std::int64_t rtt_count = 0;
  double rtt_max = -std::numeric_limits<double>::infinity();

  void add(const Line& line) {
    if (line.bytes) {
      bytes_sum += *line.bytes;
      ++bytes_count;
      bytes_max = std::max(bytes_max, *line.bytes);
    }
    if (line.rtt) {
      rtt_sum += *line.rtt;
      ++rtt_count;
      rtt_max = std::max(rtt_max, *line.rtt);
    }
  }
};

// By series, then by window end (the points' timestamp).
using ExpectedPoints = std::map<std::string, std::map<std::int64_t, Expected>>;

std::int64_t window_end(std::int64_t ts, std::int64_t size_ms = 1000) {
  return (ts / size_ms + 1) * size_ms;
}

void expect(ExpectedPoints& expected, const Line& line) {
  expected[line.series()][window_end(line.ts)].add(line);
}

std::size_t point_count(const ExpectedPoints& expected) {
  std::size_t n = 0;
  for (const auto& [series, windows] : expected) n += windows.size();
  return n;
}

// What InfluxDB holds: by series ("isp=a,stream=s1": its non-empty tags), then by time, the
// point's non-null fields.
using Points = std::map<std::string, std::map<std::int64_t, std::map<std::string, json::value>>>;

Points read_points(InfluxServer& influx, const std::string& measurement = "cdn") {
  const auto response =
      influx.query("telemetry", "SELECT * FROM \"" + measurement + "\" GROUP BY *");
  const auto& result = response.at("results").at(0).as_object();
  if (const auto* error = result.if_contains("error")) {
    throw std::runtime_error("SELECT from " + measurement + ": " + json::serialize(*error));
  }
  Points points;
  const auto* series = result.if_contains("series");
  if (!series) return points;
  for (const auto& s : series->as_array()) {
    std::map<std::string, std::string> tags;
    if (const auto* t = s.as_object().if_contains("tags")) {
      for (const auto& [k, v] : t->as_object()) {
        if (!v.as_string().empty()) tags[std::string(k)] = std::string(v.as_string());
      }
    }
    std::string name;
    for (const auto& [k, v] : tags) name += (name.empty() ? "" : ",") + k + "=" + v;
    const auto& columns = s.at("columns").as_array();
    for (const auto& row : s.at("values").as_array()) {
      const auto& cells = row.as_array();
      auto& fields = points[name][cells.at(0).to_number<std::int64_t>()];
      for (std::size_t i = 1; i < cells.size(); ++i) {
        if (!cells[i].is_null()) fields[std::string(columns.at(i).as_string())] = cells[i];
      }
    }
  }
  return points;
}

// "" if InfluxDB holds exactly the expected points, field for field; otherwise what differs.
std::string differences(const ExpectedPoints& expected, const Points& got) {
  std::ostringstream out;
  for (const auto& [series, windows] : got) {
    for (const auto& [time, fields] : windows) {
      if (!expected.count(series) || !expected.at(series).count(time)) {
        out << "unexpected point " << series << " at " << time << "\n";
      }
    }
  }
  for (const auto& [series, windows] : expected) {
    for (const auto& [time, e] : windows) {
      const std::string where = series + " at " + std::to_string(time);
      if (!got.count(series) || !got.at(series).count(time)) {
        out << "missing point " << where << "\n";
        continue;
      }
      const auto& fields = got.at(series).at(time);
      std::set<std::string> wanted;
      const auto integer = [&](const std::string& name, std::int64_t value) {
        wanted.insert(name);
        const auto it = fields.find(name);
        if (it == fields.end()) {
          out << where << ": no " << name << " (expected " << value << ")\n";
        } else if (!it->second.is_int64() || it->second.as_int64() != value) {
          out << where << ": " << name << " = " << json::serialize(it->second) << ", expected "
              << value << "\n";
        }
      };
      const auto floating = [&](const std::string& name, double value) {
        wanted.insert(name);
        const auto it = fields.find(name);
        if (it == fields.end()) {
          out << where << ": no " << name << " (expected " << value << ")\n";
        } else if (!it->second.is_number() || it->second.to_number<double>() != value) {
          out << where << ": " << name << " = " << json::serialize(it->second) << ", expected "
              << number(value) << "\n";
        }
      };
      if (e.bytes_count > 0) {
        integer("bytes_sum", e.bytes_sum);
        integer("bytes_count", e.bytes_count);
        integer("bytes_max", e.bytes_max);
      }
      if (e.rtt_count > 0) {
        floating("rtt_sum", e.rtt_sum);
        integer("rtt_count", e.rtt_count);
        floating("rtt_max", e.rtt_max);
      }
      for (const auto& [name, value] : fields) {
        if (!wanted.count(name)) {
          out << where << ": unexpected field " << name << " = " << json::serialize(value) << "\n";
        }
      }
    }
  }
  return out.str();
}

// The first column of every row of an InfluxQL statement (SHOW TAG KEYS, SHOW MEASUREMENTS...).
std::set<std::string> first_column(InfluxServer& influx, const std::string& statement) {
  std::set<std::string> out;
  for (const auto& row : influx.series_values("telemetry", statement)) {
    out.insert(std::string(row.at(0).as_string()));
  }
  return out;
}

// Field types InfluxDB fixed for a measurement: field key -> "integer", "float"...
std::map<std::string, std::string> field_types(InfluxServer& influx, const std::string& m) {
  std::map<std::string, std::string> out;
  for (const auto& row : influx.series_values("telemetry", "SHOW FIELD KEYS FROM \"" + m + "\"")) {
    out[std::string(row.at(0).as_string())] = std::string(row.at(1).as_string());
  }
  return out;
}

std::string join(const std::vector<Line>& lines) {
  std::string text;
  for (const auto& line : lines) text += line.text();
  return text;
}

}  // namespace

TEST_CASE("keyed windows: several keys from three interleaved connections land exactly per key",
          "[system][keyed]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  // Out-of-orderness wide enough that no interleaving of the three clients makes a line late.
  const PipelineSpec spec = keyed_spec(influx.port(), "max_out_of_orderness: 10s");
  Daemon daemon({spec});
  const std::uint16_t http = daemon.enable_http();
  daemon.start();

  // Seven keys (an isp value with characters line protocol escapes, a stream without isp), three
  // windows, each client sending every key in every window with its own host and tag order.
  const std::int64_t base = past_base();
  const std::vector<std::pair<std::string, std::string>> keys{{"s1", "a"}, {"s1", "big telco, inc"},
                                                              {"s2", "a"}, {"s2", "big telco, inc"},
                                                              {"s3", "a"}, {"s3", "b=c"},
                                                              {"s4", ""}};
  std::vector<std::vector<Line>> per_client(3);
  ExpectedPoints expected;
  std::size_t total = 0;
  for (int c = 0; c < 3; ++c) {
    for (int w = 0; w < 3; ++w) {
      for (std::size_t k = 0; k < keys.size(); ++k) {
        for (int r = 0; r < 8; ++r) {
          const int n = c * 1000 + w * 100 + static_cast<int>(k) * 10 + r;
          Line line;
          line.stream = keys[k].first;
          line.isp = keys[k].second;
          line.host = "h" + std::to_string(c);
          line.ts = base + w * 1000 + (n * 37) % 1000;
          if (r % 5 != 4) line.bytes = 1 + (n * 7919) % 100'000;  // some lines only carry rtt
          if (r % 7 != 6) line.rtt = 0.25 * ((n * 13) % 40);      // 0 to 9.75; "2" is a float too
          line.tag_order = (c + r) % 3;
          line.extras = r % 3 == 0;
          per_client[c].push_back(line);
          expect(expected, line);
          ++total;
        }
      }
    }
  }
  // Interleaved: each round sends the next slice of every client's bytes, cutting lines anywhere.
  {
    std::vector<std::string> payloads;
    for (const auto& lines : per_client) payloads.push_back(join(lines));
    std::vector<std::unique_ptr<TcpFeeder>> feeders;
    for (int c = 0; c < 3; ++c) feeders.push_back(std::make_unique<TcpFeeder>(spec.listen_port));
    const std::size_t slice = 997;
    for (std::size_t at = 0; at < payloads[0].size() + slice; at += slice) {
      for (int c = 0; c < 3; ++c) {
        if (at < payloads[c].size())
          feeders[c]->send(std::string_view(payloads[c]).substr(at, slice));
      }
    }
    for (auto& f : feeders) f->close();
  }
  AWAIT(daemon, metric_reaches(http, "tumbled_lines_accepted_total", static_cast<double>(total)));
  CHECK(metric(http, "tumbled_lines_accepted_total") == static_cast<double>(total));
  for (const char* reason : {"bad_line", "no_numeric_field", "type_conflict", "too_late",
                             "too_far_in_future", "too_many_keys"}) {
    INFO(reason);
    CHECK(rejected(http, reason) == 0);
  }
  // Nothing is due yet: the watermark is 10 s behind the newest event.
  CHECK(metric(http, "tumbled_windows_emitted_total") == 0);
  CHECK(metric(http, "tumbled_open_keys") == static_cast<double>(point_count(expected)));

  // A line 10 s past the last window moves the watermark to its end: all three windows close.
  // Its own measurement and window stay open (not written).
  send_all(spec.listen_port, "tick bytes=0i " + std::to_string(base + 3000 + 10'000) + "\n");
  AWAIT(daemon, points_landed(http, static_cast<double>(point_count(expected))));

  const Points got = read_points(influx);
  CHECK(differences(expected, got) == "");
  CHECK(point_count(expected) == 21);
  // Only the group_by tags reach InfluxDB: not host, not the ignored fields.
  CHECK(first_column(influx, "SHOW TAG KEYS FROM cdn") == std::set<std::string>{"isp", "stream"});
  CHECK(field_types(influx, "cdn") == std::map<std::string, std::string>{{"bytes_count", "integer"},
                                                                         {"bytes_max", "integer"},
                                                                         {"bytes_sum", "integer"},
                                                                         {"rtt_count", "integer"},
                                                                         {"rtt_max", "float"},
                                                                         {"rtt_sum", "float"}});
  CHECK(first_column(influx, "SHOW MEASUREMENTS") == std::set<std::string>{"cdn"});
  CHECK(metric(http, "tumbled_windows_emitted_total") == 21);
  CHECK(metric(http, "tumbled_points_updated_total") == 0);
  CHECK(metric(http, "tumbled_open_keys") == 1);  // the tick's
  CHECK(daemon.stop() == 0);
}

TEST_CASE(
    "keyed windows: out-of-order lines land, late ones update the point, too late ones are "
    "rejected",
    "[system][keyed]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  const PipelineSpec spec =
      keyed_spec(influx.port(), "max_out_of_orderness: 2s, allowed_lateness: 3s");
  Daemon daemon({spec});
  const std::uint16_t http = daemon.enable_http();
  daemon.start();

  const std::int64_t base = past_base();
  ExpectedPoints expected;
  const auto line = [&](std::int64_t offset, std::int64_t bytes, double rtt) {
    Line l;
    l.stream = "s1";
    l.isp = "a";
    l.host = "h1";
    l.ts = base + offset;
    l.bytes = bytes;
    l.rtt = rtt;
    return l;
  };
  const auto send = [&](const std::vector<Line>& lines, const std::string& more = "") {
    for (const auto& l : lines) expect(expected, l);
    send_all(spec.listen_port, join(lines) + more);
  };
  const auto only_k1 = [&] {
    Points got = read_points(influx);
    CHECK(got.size() == 1);
    return got;
  };

  // Windows W0 = [base, base+1s), W1, ... The fourth line is 1.9 s older than the newest, within
  // the 2 s bound: it lands in W0. The last one moves the watermark to base+1.2s: W0 is emitted.
  send({line(100, 10, 1.5), line(1500, 20, 2.5), line(2500, 30, 0.5), line(600, 5, 0.25),
        line(3200, 40, 1)});
  AWAIT(daemon, metric_reaches(http, "tumbled_lines_accepted_total", 5));
  AWAIT(daemon, points_landed(http, 1));
  ExpectedPoints w0{
      {"isp=a,stream=s1", {{base + 1000, expected.at("isp=a,stream=s1").at(base + 1000)}}}};
  CHECK(w0.at("isp=a,stream=s1").at(base + 1000).bytes_sum == 15);
  CHECK(differences(w0, only_k1()) == "");
  CHECK(metric(http, "tumbled_points_updated_total") == 0);

  // Late, but W0 is open until the watermark reaches base+1s+3s: the point is written again with
  // the new figures, at the same time, replacing the first.
  send({line(900, 7, 0.75)});
  AWAIT(daemon, metric_reaches(http, "tumbled_points_updated_total", 1));
  AWAIT(daemon, points_landed(http, 2));
  w0.at("isp=a,stream=s1").at(base + 1000) = expected.at("isp=a,stream=s1").at(base + 1000);
  CHECK(w0.at("isp=a,stream=s1").at(base + 1000).bytes_sum == 22);
  CHECK(differences(w0, only_k1()) == "");

  // The watermark reaches base+4.5s: W0's lateness has passed, W1-W3 are due. Then a value for W0
  // (too late, never counted), a line that does not parse, lines without a selected numeric
  // field, a float for the integer field bytes, and one an hour ahead of the wall clock.
  send({line(6500, 50, 3)},
       "cdn,stream=s1,isp=a bytes=1000i,rtt=8 " + std::to_string(base + 200) + "\n" +
           "cdn,stream=s1,isp=a bytes=oops " + std::to_string(base + 6600) + "\n" +
           "cdn,stream=s1,isp=a note=\"only a string\" " + std::to_string(base + 6600) + "\n" +
           "cdn,stream=s1,isp=a status=200i,ok=true " + std::to_string(base + 6600) + "\n" +
           "cdn,stream=s1,isp=a bytes=1.5,rtt=1 " + std::to_string(base + 6600) + "\n" +
           "cdn,stream=s1,isp=a bytes=1i " + std::to_string(wall_ms() + 3'600'000) + "\n");
  AWAIT(daemon, wait_until(
                    [&] {
                      return metric(http, "tumbled_lines_accepted_total") >= 7 &&
                             rejected(http, "too_late") >= 1 && rejected(http, "bad_line") >= 1 &&
                             rejected(http, "no_numeric_field") >= 2 &&
                             rejected(http, "type_conflict") >= 1 &&
                             rejected(http, "too_far_in_future") >= 1;
                    },
                    hang_guard(), 20ms));
  // One more line, so that the window of base+6.5s is due (watermark base+7s): once its point has
  // landed, anything the rejected lines might have changed would have been written before it.
  send({line(9000, 60, 4)});
  AWAIT(daemon, points_landed(http, 6));
  expected.at("isp=a,stream=s1").erase(base + 10'000);  // W9 stays open
  CHECK(differences(expected, only_k1()) == "");
  CHECK(only_k1().at("isp=a,stream=s1").size() == 5);
  CHECK(metric(http, "tumbled_lines_accepted_total") == 8);
  CHECK(rejected(http, "too_late") == 1);
  CHECK(rejected(http, "bad_line") == 1);
  CHECK(rejected(http, "no_numeric_field") == 2);
  CHECK(rejected(http, "too_far_in_future") == 1);
  CHECK(rejected(http, "type_conflict") == 1);
  CHECK(metric(http, "tumbled_points_updated_total") == 1);
  CHECK(metric(http, "tumbled_windows_emitted_total") == 6);  // five points, one of them twice
  // W0-W3 have been dropped; the windows of base+6.5s (emitted, open for lateness) and base+9s.
  CHECK(metric(http, "tumbled_open_keys") == 2);
  // The watermark is base+7s: its lag is the wall clock minus that, at the moment of the scrape.
  const std::int64_t before = wall_ms();
  const double lag = metric(http, "tumbled_watermark_lag_seconds");
  const std::int64_t after = wall_ms();
  CHECK(lag >= static_cast<double>(before - (base + 7000)) / 1000.0 - 0.0005);
  CHECK(lag <= static_cast<double>(after - (base + 7000)) / 1000.0 + 0.0005);
  CHECK(daemon.stop() == 0);
}

namespace {

// Ten keys over four windows W0-W3, four lines per key and window. The part sent before the
// restart (all of W0, then half of W1 and a quarter of W2) moves the watermark past W0's end
// only: W0 is emitted and, with no allowed lateness, dropped; W1 and W2 stay open with ten keys
// each. The rest of W1 and of W2 completes them, W3 comes last. Event times within a window lie
// in its first 400 ms, and no window is due before the lines of the previous part have all been
// read, so no interleaving of two clients makes a line late.
struct Stream {
  std::int64_t base = past_base();
  std::vector<Line> w0, first_w1_w2, rest_w1, rest_w2, w3;
  ExpectedPoints expected;

  Stream() {
    for (int w = 0; w < 4; ++w) {
      for (int k = 0; k < 10; ++k) {
        for (int r = 0; r < 4; ++r) {
          Line line;
          line.stream = "s" + std::to_string(k / 2);
          line.isp = k % 2 ? "a" : "b";
          line.host = "h" + std::to_string(r);
          line.ts = base + w * 1000 + (k * 37 + r * 101) % 400;
          line.bytes = 1000 * w + 100 * k + r + 1;
          line.rtt = 0.5 * (k + r + w);
          line.tag_order = r % 3;
          expect(expected, line);
          if (w == 0) {
            w0.push_back(line);
          } else if ((w == 1 && r % 2 == 0) || (w == 2 && r == 0)) {
            first_w1_w2.push_back(line);
          } else if (w == 1) {
            rest_w1.push_back(line);
          } else if (w == 2) {
            rest_w2.push_back(line);
          } else {
            w3.push_back(line);
          }
        }
      }
    }
  }
};

// Sends `lines` alternately over two connections and waits until the daemon has accepted
// `accepted` lines in this run.
void send_two(const Daemon& daemon, std::uint16_t http, const std::vector<Line>& lines,
              std::size_t accepted) {
  std::vector<Line> odd, even;
  for (std::size_t i = 0; i < lines.size(); ++i) (i % 2 ? odd : even).push_back(lines[i]);
  TcpFeeder a(daemon.pipeline().listen_port), b(daemon.pipeline().listen_port);
  a.send(join(even));
  b.send(join(odd));
  a.close();
  b.close();
  AWAIT(daemon,
        metric_reaches(http, "tumbled_lines_accepted_total", static_cast<double>(accepted)));
}

// The part before the restart; returns once the daemon has read it all and InfluxDB holds W0's
// ten points.
void send_first_part(const Stream& s, const Daemon& daemon, std::uint16_t http) {
  send_two(daemon, http, s.w0, s.w0.size());
  send_two(daemon, http, s.first_w1_w2, s.w0.size() + s.first_w1_w2.size());
  AWAIT(daemon, points_landed(http, 10));
}

// After the restart: the state came back (W1 and W2 open, the watermark past W0, the field
// types); the `rest` of W1 and W2, then W3, complete the windows and every point lands with
// exact figures.
void finish_after_restart(const Stream& s, const std::vector<Line>& rest, Daemon& daemon,
                          InfluxServer& influx, std::uint16_t http) {
  const PipelineSpec& spec = daemon.pipeline();
  CHECK(metric(http, "tumbled_open_keys") == 20);  // W1 and W2, ten keys each
  send_two(daemon, http, rest, rest.size());
  // W0 was dropped before the restart: with the watermark restored, a value for it is too late.
  // bytes has been an integer field since before the restart: a float for it is refused.
  send_all(spec.listen_port,
           "cdn,stream=s0,isp=b bytes=100000i,rtt=1 " + std::to_string(s.base + 10) + "\n" +
               "cdn,stream=s0,isp=b bytes=2.5,rtt=1 " + std::to_string(s.base + 2100) + "\n");
  AWAIT(daemon,
        wait_until(
            [&] { return rejected(http, "too_late") >= 1 && rejected(http, "type_conflict") >= 1; },
            hang_guard(), 20ms));
  send_all(spec.listen_port, join(s.w3));
  AWAIT(daemon, metric_reaches(http, "tumbled_lines_accepted_total",
                               static_cast<double>(rest.size() + s.w3.size())));
  // Past W3's end: W1, W2 and W3 close, thirty points.
  send_all(spec.listen_port, "tick bytes=0i " + std::to_string(s.base + 5000) + "\n");
  AWAIT(daemon, points_landed(http, 30));

  CHECK(point_count(s.expected) == 40);
  CHECK(differences(s.expected, read_points(influx)) == "");
  CHECK(metric(http, "tumbled_windows_emitted_total") == 30);
  CHECK(rejected(http, "too_late") == 1);
  CHECK(rejected(http, "type_conflict") == 1);
  // No late value changed an emitted window in this run: nothing was emitted *again*.
  CHECK(metric(http, "tumbled_points_updated_total") == 0);
  CHECK(daemon.stop() == 0);
}

}  // namespace

TEST_CASE("keyed windows: SIGKILL after a checkpoint mid-window, restart, figures exact",
          "[system][keyed]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  Daemon daemon({keyed_spec(influx.port(), "max_out_of_orderness: 1s, allowed_lateness: 0s")},
                "200ms");
  const std::uint16_t http = daemon.enable_http();
  daemon.start();
  Stream s;
  send_first_part(s, daemon, http);
  // Everything read so far is durable once a checkpoint has completed after this reading.
  const double checkpoints = metric(http, "tumbled_checkpoints_total");
  AWAIT(daemon, metric_reaches(http, "tumbled_checkpoints_total", checkpoints + 1));
  daemon.kill();

  daemon.start();
  CHECK(daemon.log_text().find("restored") != std::string::npos);
  std::vector<Line> rest = s.rest_w1;
  rest.insert(rest.end(), s.rest_w2.begin(), s.rest_w2.end());
  finish_after_restart(s, rest, daemon, influx, http);
}

TEST_CASE("keyed windows: SIGTERM mid-window and restart lose nothing", "[system][keyed]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  Daemon daemon({keyed_spec(influx.port(), "max_out_of_orderness: 1s, allowed_lateness: 0s")},
                "1m");  // no periodic checkpoint: the stop must save the open windows itself
  const std::uint16_t http = daemon.enable_http();
  daemon.start();
  Stream s;
  send_first_part(s, daemon, http);
  // Read after the last checkpoint (W0's emission): only the stop can save these.
  send_two(daemon, http, s.rest_w1, s.w0.size() + s.first_w1_w2.size() + s.rest_w1.size());
  CHECK(daemon.stop() == 0);

  daemon.start();
  CHECK(daemon.log_text().find("restored") != std::string::npos);
  finish_after_restart(s, s.rest_w2, daemon, influx, http);
}

TEST_CASE("keyed windows: window.idle_timeout closes the last windows, a late value then updates",
          "[system][keyed]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  const PipelineSpec spec =
      keyed_spec(influx.port(), "max_out_of_orderness: 5s, allowed_lateness: 1h", "1s");
  Daemon daemon({spec});
  const std::uint16_t http = daemon.enable_http();
  daemon.start();

  // Three keys in two windows ten minutes ago, in one small send, and nothing after them: only
  // the idle timeout can move the watermark past their ends.
  const std::int64_t base = past_base();
  ExpectedPoints expected;
  std::vector<Line> lines;
  for (int w = 0; w < 2; ++w) {
    for (int k = 0; k < 3; ++k) {
      for (int r = 0; r < 2; ++r) {
        Line line;
        line.stream = "s" + std::to_string(k);
        line.isp = "a";
        line.host = "h" + std::to_string(r);
        line.ts = base + w * 1000 + 300 * k + 10 * r;
        line.bytes = 100 * r + 10 * w + k;
        line.rtt = 0.125 * (w + k + r);
        lines.push_back(line);
        expect(expected, line);
      }
    }
  }
  send_all(spec.listen_port, join(lines));
  AWAIT(daemon, metric_reaches(http, "tumbled_lines_accepted_total", 12));
  // (Waits on InfluxDB's content itself: with an hour of allowed lateness the figures come out
  // exact even if the timeout fired between two of the lines, which would only split them into
  // a point and its update.)
  const auto landed = [&] { return differences(expected, read_points(influx)).empty(); };
  AWAIT(daemon, wait_until(landed, hang_guard(), 50ms));
  CHECK(differences(expected, read_points(influx)) == "");
  // The watermark now follows the wall clock less max_out_of_orderness, not the data's time.
  const double lag = metric(http, "tumbled_watermark_lag_seconds");
  CHECK(lag >= 5.0);
  CHECK(lag < 60.0);
  CHECK(metric(http, "tumbled_open_keys") == 6);  // kept for the allowed lateness

  // Ten minutes late, well within the hour: the point of that window is written again.
  Line late = lines.front();
  late.ts += 1;
  late.bytes = 1000;
  late.rtt = 0.5;
  expect(expected, late);
  send_all(spec.listen_port, late.text());
  AWAIT(daemon, metric_reaches(http, "tumbled_points_updated_total", 1));
  AWAIT(daemon, wait_until(landed, hang_guard(), 50ms));
  CHECK(differences(expected, read_points(influx)) == "");
  CHECK(rejected(http, "too_late") == 0);
  CHECK(metric(http, "tumbled_points_updated_total") == 1);
  CHECK(metric(http, "tumbled_windows_emitted_total") == 7);
  CHECK(daemon.stop() == 0);
}

TEST_CASE("keyed windows: window.max_keys bounds the open (key, window) pairs", "[system][keyed]") {
  InfluxServer influx;
  influx.create_database("telemetry");
  const PipelineSpec spec = keyed_spec(
      influx.port(), "max_out_of_orderness: 0s, allowed_lateness: 0s, max_keys: 3", "1s");
  Daemon daemon({spec});
  const std::uint16_t http = daemon.enable_http();
  daemon.start();

  // Three keys fill the limit; a fourth is refused while the first keeps aggregating.
  const std::int64_t base = past_base();
  const auto line = [&](const std::string& stream, std::int64_t offset, std::int64_t bytes) {
    Line l;
    l.stream = stream;
    l.isp = "a";
    l.host = "h";
    l.ts = base + offset;
    l.bytes = bytes;
    return l;
  };
  const std::vector<Line> accepted{line("s1", 100, 1), line("s2", 200, 2), line("s3", 300, 3),
                                   line("s1", 500, 10)};
  ExpectedPoints expected;
  for (const auto& l : accepted) expect(expected, l);
  send_all(spec.listen_port,
           join({accepted[0], accepted[1], accepted[2], line("s4", 400, 4), accepted[3]}));
  AWAIT(daemon, metric_reaches(http, "tumbled_lines_accepted_total", 4));
  CHECK(rejected(http, "too_many_keys") == 1);
  // The idle timeout closes the window: three points, none for the refused key.
  AWAIT(daemon, points_landed(http, 3));
  CHECK(differences(expected, read_points(influx)) == "");
  CHECK(metric(http, "tumbled_open_keys") == 0);
  // The pairs are gone with their window: new keys fit again (read at the wall clock, as lines
  // without a timestamp are).
  send_all(spec.listen_port, "cdn,stream=s4,isp=a bytes=4i\ncdn,stream=s5,isp=a bytes=5i\n");
  AWAIT(daemon, metric_reaches(http, "tumbled_lines_accepted_total", 6));
  CHECK(rejected(http, "too_many_keys") == 1);
  CHECK(daemon.stop() == 0);
}
