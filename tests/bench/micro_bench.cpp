// Micro-benchmarks of tumbled's hot paths, on the payload tumbled-bench sends (payload.hpp):
// LineFramer::feed over 256 KiB reads (as TcpSource reads them) on each integer payload shape
// (small, uniform6, int64, crlf), parse_line alone, the window
// accumulation as Pipeline::accept_values does it (one window lookup per read) and per value, and
// a window's point encoding (window_fields + sink::append_point), LineProtocolParser::parse
// on typical InfluxDB lines, without and with escapes, and the line_protocol format's path
// (LineProtocolDecoder into KeyedWindows::add) with 1, 10 000 and 1 000 000 keys.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "payload.hpp"
#include "sink/line_protocol.hpp"
#include "source/line_framer.hpp"
#include "source/line_protocol_decoder.hpp"
#include "source/line_protocol_parser.hpp"
#include "window/keyed_windows.hpp"
#include "window/tumbling_windows.hpp"

namespace {

using namespace tumbled;

const bench::Payload& payload() {
  static const bench::Payload p = bench::make_payload(16 << 20);
  return p;
}

constexpr std::size_t kReadBytes = 256 * 1024;  // TcpSource's read size

// The integer payloads of `tumbled-bench ingest --payload` (payload.hpp), by IntegerShape.
const bench::Payload& integer_payload(std::int64_t shape) {
  static const bench::Payload payloads[] = {
      bench::make_integer_payload(bench::IntegerShape::small, 16 << 20),
      bench::make_integer_payload(bench::IntegerShape::uniform6, 16 << 20),
      bench::make_integer_payload(bench::IntegerShape::int64, 16 << 20),
      bench::make_integer_payload(bench::IntegerShape::crlf, 16 << 20),
  };
  return payloads[shape];
}

// Feeds the whole payload in 256 KiB pieces cut at arbitrary bytes, like TCP reads, handing each
// piece's values over in a reused vector, as TcpSource does. The argument is the payload's
// IntegerShape: 0 small, 1 uniform6, 2 int64, 3 crlf.
void BM_LineFramerFeed(benchmark::State& state) {
  const auto& p = integer_payload(state.range(0));
  state.SetLabel(bench::name(p.shape));
  std::vector<std::int64_t> values;
  values.reserve(kReadBytes / 2);
  std::uint64_t checksum = 0;
  for (auto _ : state) {
    source::LineFramer framer(1024);
    for (std::size_t offset = 0; offset < p.bytes.size(); offset += kReadBytes) {
      const std::string_view piece(p.bytes.data() + offset,
                                   std::min(kReadBytes, p.bytes.size() - offset));
      framer.feed(piece, [&values](std::int64_t v) { values.push_back(v); });
      checksum += values.size();
      values.clear();
    }
    framer.finish([&values](std::int64_t v) { values.push_back(v); });
    values.clear();
  }
  benchmark::DoNotOptimize(checksum);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * p.bytes.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * p.lines));
}
BENCHMARK(BM_LineFramerFeed)->DenseRange(0, 3)->Unit(benchmark::kMillisecond);

// parse_line alone over the pre-split lines: what the framing around it costs is the difference.
void BM_ParseLine(benchmark::State& state) {
  const auto& p = payload();
  std::vector<std::string_view> lines;
  std::string_view rest = p.bytes;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  std::uint64_t sum = 0;
  for (auto _ : state) {
    for (const auto line : lines) {
      std::int64_t v = 0;
      if (source::parse_line(line, v) == source::LineKind::value)
        sum += static_cast<std::uint64_t>(v);
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * p.bytes.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * lines.size()));
}
BENCHMARK(BM_ParseLine)->Unit(benchmark::kMillisecond);

std::vector<std::int64_t> read_values(std::size_t n) {
  std::vector<std::int64_t> values;
  source::LineFramer framer(1024);
  framer.feed(payload().bytes, [&](std::int64_t v) {
    if (values.size() < n) values.push_back(v);
  });
  return values;
}

// As Pipeline::accept_values: one accumulator lookup per read (~37 000 values), then add().
void BM_WindowAccumulatePerRead(benchmark::State& state) {
  const auto values = read_values(static_cast<std::size_t>(state.range(0)));
  window::TumblingWindows windows(1000);
  const window::TimeMs now = 1'700'000'000'123;
  for (auto _ : state) {
    auto& totals = windows.accumulator_at(now);
    for (const auto v : values) totals.add(v);
    benchmark::DoNotOptimize(totals);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * values.size()));
}
BENCHMARK(BM_WindowAccumulatePerRead)->Arg(37'000);

// TumblingWindows::add per value (a window lookup for each one), for contrast.
void BM_WindowAddPerValue(benchmark::State& state) {
  const auto values = read_values(static_cast<std::size_t>(state.range(0)));
  window::TumblingWindows windows(1000);
  const window::TimeMs now = 1'700'000'000'123;
  for (auto _ : state) {
    for (const auto v : values) windows.add(now, v);
  }
  benchmark::DoNotOptimize(windows.open_windows());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * values.size()));
}
BENCHMARK(BM_WindowAddPerValue)->Arg(37'000);

// One closed window -> one line-protocol point, as Pipeline::close_windows encodes it.
void BM_EncodePoint(benchmark::State& state) {
  const std::vector<config::Aggregate> aggregates =
      state.range(0) == 1
          ? std::vector<config::Aggregate>{config::Aggregate::sum}
          : std::vector<config::Aggregate>{config::Aggregate::sum, config::Aggregate::count,
                                           config::Aggregate::min, config::Aggregate::max,
                                           config::Aggregate::mean};
  const std::map<std::string, std::string> tags{{"window", "10-sec"}};
  window::WindowAccumulator totals;
  for (const auto v : read_values(1000)) totals.add(v);
  std::string line;
  std::size_t bytes = 0;
  window::TimeMs end = 1'700'000'000'000;
  for (auto _ : state) {
    bool saturated = false;
    const auto fields = window::window_fields(totals, aggregates, saturated);
    line.clear();
    sink::append_point(line, "records", tags, fields, end += 10'000);
    bytes += line.size();
    benchmark::DoNotOptimize(line.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetLabel(line.substr(0, line.size() - 1));
}
BENCHMARK(BM_EncodePoint)->Arg(1)->Arg(5);

// sink::append_point alone, fields prepared.
void BM_AppendPoint(benchmark::State& state) {
  const std::map<std::string, std::string> tags{{"window", "10-sec"}};
  const std::vector<sink::Field> fields{{"sum", std::int64_t{-1234567890123}},
                                        {"count", std::int64_t{987654}}};
  std::string line;
  std::size_t bytes = 0;
  std::int64_t end = 1'700'000'000'000;
  for (auto _ : state) {
    line.clear();
    sink::append_point(line, "records", tags, fields, end += 10'000);
    bytes += line.size();
    benchmark::DoNotOptimize(line.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_AppendPoint);

// 4096 lines like a CDN exporter's, numbers varying; every `escaped_every`-th line (0: none)
// has escaped names and a string field with escaped quotes, so it is unescaped into the
// parser's buffer. One buffer with '\n' after each line, as a framer would hand them over.
std::vector<std::string_view> line_protocol_lines(std::string& storage, int escaped_every) {
  static const char* const isps[] = {"comcast", "verizon", "att", "cox"};
  storage.clear();
  std::vector<std::size_t> ends;
  for (int i = 0; i < 4096; ++i) {
    if (escaped_every > 0 && i % escaped_every == 0) {
      storage += "cdn\\ edge,stream=s\\ " + std::to_string(100 + i % 900) + ",isp=" + isps[i % 4] +
                 "\\,inc bytes=" + std::to_string(1000 + i * 37) +
                 "i,rtt=" + std::to_string(i % 97) + "." + std::to_string(i % 10) +
                 ",msg=\"a \\\"quoted\\\" word\" " + std::to_string(1700000000000000000 + i);
    } else {
      storage += "cdn,stream=s" + std::to_string(100 + i % 900) + ",isp=" + isps[i % 4] +
                 " bytes=" + std::to_string(1000 + i * 37) + "i,rtt=" + std::to_string(i % 97) +
                 "." + std::to_string(i % 10) + " " + std::to_string(1700000000000000000 + i);
    }
    ends.push_back(storage.size());
    storage += '\n';
  }
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (const std::size_t end : ends) {
    lines.emplace_back(storage.data() + start, end - start);
    start = end + 1;
  }
  return lines;
}

// One parser and one ParsedLine for all lines, as a connection would keep them: after the first
// pass nothing is allocated. Arg: every how many lines one has escapes (0: none, 2: half).
void BM_LineProtocolParse(benchmark::State& state) {
  std::string storage;
  const auto lines = line_protocol_lines(storage, static_cast<int>(state.range(0)));
  source::LineProtocolParser parser;
  source::ParsedLine parsed;
  std::uint64_t fields = 0;
  std::size_t bytes = 0;
  for (const auto line : lines) bytes += line.size() + 1;
  for (auto _ : state) {
    for (const auto line : lines) {
      if (parser.parse(line, parsed).ok()) fields += parsed.fields.size();
      benchmark::DoNotOptimize(parsed);
    }
  }
  if (fields == 0) state.SkipWithError("no line parsed");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * lines.size()));
  state.SetLabel(std::string(lines[0]));
}
BENCHMARK(BM_LineProtocolParse)->Arg(0)->Arg(2);

// Bytes the process has allocated from malloc (glibc), mmapped blocks included.
std::uint64_t heap_bytes() {
  const struct mallinfo2 info = ::mallinfo2();
  return info.uordblks + info.hblkhd;
}

// The line_protocol format as a pipeline runs it, without sockets: the payload tumbled-bench
// sends with `ingest --format line_protocol --keys N` (payload.hpp; at least 16 MiB, each key as
// often) fed in 256 KiB pieces to a LineProtocolDecoder whose lines go to KeyedWindows::add with
// tumbled-bench's settings (event time, precision s, 1h windows, group_by [stream, isp], fields
// [bytes], aggregates [sum, count, max]). All lines fall into one window that stays open; one
// untimed pass first opens every (key, window) pair, so the timed passes are the steady state of
// a long window: a lookup and an update per line. No checkpoints (KeyedWindows::changes) and no
// emission. The label gives the bytes allocated by that first pass per pair (the KeyedWindows'
// own cost, without what the allocator keeps beyond it; for 1 key: the fixed cost).
void BM_LineProtocolKeyed(benchmark::State& state) {
  const auto keys = static_cast<std::uint64_t>(state.range(0));
  const std::int64_t first_second = 1'700'000'000 / 3600 * 3600;
  const bench::Payload p = bench::make_line_protocol_payload(16 << 20, keys, first_second);
  window::KeyedSettings settings;
  settings.size_ms = 3'600'000;
  settings.event_time = true;
  settings.precision = window::Precision::s;
  settings.idle_timeout_ms = 0;
  settings.group_by = {"stream", "isp"};
  settings.fields = {"bytes"};
  settings.aggregates = {config::Aggregate::sum, config::Aggregate::count, config::Aggregate::max};
  settings.max_keys = keys + 1000;
  const window::TimeMs now = (first_second + 3600) * 1000;  // the window is over by the clock

  const std::uint64_t heap_before = heap_bytes();
  window::KeyedWindows windows(settings);
  std::uint64_t rejected = 0;
  const auto feed_all = [&] {
    source::LineProtocolDecoder decoder(1024, [&](const source::ParsedLine& line) {
      const auto verdict = windows.add(line, now);
      rejected += verdict != source::Rejection::none;
      return verdict;
    });
    for (std::size_t offset = 0; offset < p.bytes.size(); offset += kReadBytes) {
      decoder.feed({p.bytes.data() + offset, std::min(kReadBytes, p.bytes.size() - offset)});
    }
    decoder.finish();
  };
  feed_all();
  const std::uint64_t heap_after = heap_bytes();
  if (windows.open_pairs() != keys || rejected != 0) {
    state.SkipWithError("not every line was accepted into its own key");
    return;
  }
  for (auto _ : state) feed_all();
  if (rejected != 0) state.SkipWithError("lines rejected");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * p.bytes.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * p.lines));
  // A label, not a counter: the CSV reporter wants the same counters in every benchmark.
  const double per_pair = (static_cast<double>(heap_after) - static_cast<double>(heap_before)) /
                          static_cast<double>(keys);
  state.SetLabel(std::to_string(static_cast<long long>(per_pair)) + " B heap per pair");
}
BENCHMARK(BM_LineProtocolKeyed)->Arg(1)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
