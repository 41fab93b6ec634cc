// tumbled-bench: load generator and benchmark driver for tumbled (see tests/bench/run.sh).
//
// Each subcommand starts what it needs itself (a private influxd through the test support
// library, a tumbled with a generated config in a temp dir), on 127.0.0.1 only, and prints the
// command and the machine, its figures, then a Markdown table of results.
#include <iostream>
#include <string_view>

#include "subcommands.hpp"

namespace {

constexpr std::string_view kUsage = R"(Usage: tumbled-bench COMMAND [--option value ...]

  ingest      [--payload small|uniform6|int64|crlf|all] [--tumbled PATH] [--connections N]
              [--threads T[,T...]] [--seconds S] [--payload-mib M] [--window-ms W] [--runs R]
              [--no-ceiling] [--perf perf.data]
              integers/s and MB/s into tumbled vs. a newline-counting reader (ceiling), tumbled's
              CPU-seconds per 10^9 integers, then checks the sum in InfluxDB equals the sum sent.
              --runs: median and range of R runs. --threads: source.tcp.threads, a list
              measures each in turn.
              --payload: the integers' shape (small: default; uniform6: uniform in +-10^6;
              int64: mostly 19 digits; crlf: small with "\r\n"); a list or `all` measures
              each beside its own ceiling.
  ingest      --format line_protocol [--keys K] [--check-keys C] [--tumbled PATH] [--connections N]
              [--seconds S] [--payload-mib M] [--runs R] [--no-ceiling] [--perf perf.data]
              line-protocol lines/s and MB/s with K keys (1h event-time windows, group_by
              [stream, isp], fields [bytes], aggregates [sum, count, max]) vs. the ceiling, RSS
              per open (key, window) pair; checks every line was accepted and the open pairs
              equal K (/metrics), and for K <= C (10000) the per-key sums in InfluxDB.
  ingest      --port P [--format line_protocol [--keys K] | --payload SHAPE] [--connections N]
              [--seconds S]
              only send the payload to a tumbled already listening on 127.0.0.1:P.
  latency     [--tumbled PATH] [--window-ms W] [--batch-interval D] [--seconds S] [--poll-ms P]
              window end -> point readable in InfluxDB, p50/p99.
  replay      [--tumbled PATH] [--points N] [--batch-size B] [--max-batch-size M]
              [--plain-batch P] [--runs R] [--perf perf.data]
              drain a backlog of N (1000000) points from the state store vs. a plain bulk writer
              posting P-point (5000) bodies; tumbled with batch_size B and max_batch_size M
              (its defaults unless given); median and range of R (3) runs.
  checkpoint  [--backlogs 0,10000,1000000] [--rounds R]
              CheckpointStore::save() cost for one new point with backlogs of each size.
  footprint   [--tumbled PATH] [--idle-seconds S] [--ingest-seconds S] [--outage-seconds S]
              [--outage-rate N] [--connections N] [--window-ms W]
              RSS and CPU of tumbled at idle, full ingest and during an InfluxDB outage.
  http-write  [--tumbled PATH] [--clients 1,16] [--lines-per-body L] [--keys K] [--seconds S]
              [--runs R]
              acknowledged (204) lines/s of N concurrent keep-alive clients posting L-line (5000)
              bodies with K keys (10000) to /write, into tumbled's source.http and into
              influxd's own /write; median and range of R (3) runs of S (5) seconds each; checks
              tumbled's /metrics counts exactly the acknowledged lines as accepted.
  kafka       [--tumbled PATH] [--instances 1,2] [--partitions P] [--lines N]
              [--lines-per-record L] [--keys K] [--runs R]
              lines/s consumed from a topic of P (4) partitions holding N (10 000 000) lines of
              line protocol, L (100) per record, K (10000) keys, by 1 and by 2 instances in one
              consumer group (librdkafka's mock cluster in this process); median and range of R
              (3) runs; checks every line produced is accepted exactly once.

--tumbled defaults to the tumbled built beside this binary.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace tumbled::bench;
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 64 : 0;
  }
  const std::string_view command = argv[1];
  std::cout << "command: tumbled-bench";
  for (int i = 1; i < argc; ++i) std::cout << ' ' << argv[i];
  std::cout << "\nmachine: " << machine_description() << "\n";
  try {
    const Options options(argc, argv, 2);
    if (command == "ingest") return run_ingest(options);
    if (command == "kafka") return run_kafka(options);
    if (command == "latency") return run_latency(options);
    if (command == "replay") return run_replay(options);
    if (command == "checkpoint") return run_checkpoint(options);
    if (command == "footprint") return run_footprint(options);
    if (command == "http-write") return run_http_write(options);
    std::cerr << "tumbled-bench: unknown command '" << command << "'\n\n" << kUsage;
    return 64;
  } catch (const std::invalid_argument& e) {
    std::cerr << "tumbled-bench: " << e.what() << "\n\n" << kUsage;
    return 64;
  } catch (const std::exception& e) {
    std::cerr << "tumbled-bench " << command << ": " << e.what() << "\n";
    return 1;
  }
}
