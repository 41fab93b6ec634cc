// Micro-benchmarks of tumbled's hot paths, on the payload tumbled-bench sends (payload.hpp):
// LineFramer::feed over 256 KiB reads (as TcpSource reads them), parse_line alone, the window
// accumulation as Pipeline::accept_values does it (one window lookup per read) and per value, and
// a window's point encoding (window_fields + sink::append_point), and LineProtocolParser::parse
// on typical InfluxDB lines, without and with escapes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "payload.hpp"
#include "sink/line_protocol.hpp"
#include "source/line_framer.hpp"
#include "source/line_protocol_parser.hpp"
#include "window/tumbling_windows.hpp"

namespace {

using namespace tumbled;

const bench::Payload& payload() {
  static const bench::Payload p = bench::make_payload(16 << 20);
  return p;
}

constexpr std::size_t kReadBytes = 256 * 1024;  // TcpSource's read size

// Feeds the whole payload in 256 KiB pieces cut at arbitrary bytes, like TCP reads, handing each
// piece's values over in a reused vector, as TcpSource does.
void BM_LineFramerFeed(benchmark::State& state) {
  const auto& p = payload();
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
BENCHMARK(BM_LineFramerFeed)->Unit(benchmark::kMillisecond);

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

}  // namespace

BENCHMARK_MAIN();
