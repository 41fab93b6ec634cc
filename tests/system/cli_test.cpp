// The command line as an operator meets it: --check-config, --version, --help, exit codes, and
// clear errors when the daemon cannot start.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rocksdb/db.h>

#include <csignal>
#include <fstream>
#include <memory>

#include "support/process.hpp"
#include "support/tcp_feed.hpp"

using namespace tumbled::test;
using namespace std::chrono_literals;

namespace {

struct Run {
  int code;
  std::string output;
};

Run run_tumbled(const TempDir& dir, std::vector<std::string> args, EnvVars env = {}) {
  args.insert(args.begin(), TUMBLED_BINARY);
  static int runs = 0;
  ChildProcess process(args, dir.path() / ("run-" + std::to_string(++runs) + ".log"), env);
  const auto code = process.wait_for(hang_guard());
  return {code.value_or(-1), process.log_text()};
}

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  const auto path = (dir.path() / name).string();
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("check-config accepts the shipped example and names key and line of errors",
          "[system][cli]") {
  TempDir dir;
  const auto ok =
      run_tumbled(dir, {"--config", TUMBLED_SOURCE_DIR "/config/tumbled.yaml", "--check-config"},
                  {{"INFLUX_PASSWORD", "secret"}});
  CHECK(ok.code == 0);
  CHECK(ok.output.find("configuration is valid") != std::string::npos);

  const auto bad = write(dir, "bad.yaml",
                         "pipelines:\n"
                         "  - name: a\n"
                         "    window: {size: 10 seconds}\n");
  const auto result = run_tumbled(dir, {"--config", bad, "--check-config"});
  CHECK(result.code == 78);
  CHECK(result.output.find(":3:") != std::string::npos);
  CHECK(result.output.find("window.size") != std::string::npos);

  const auto missing = run_tumbled(dir, {"--config", (dir.path() / "nope.yaml").string()});
  CHECK(missing.code == 78);
  CHECK(missing.output.find("cannot read") != std::string::npos);
}

TEST_CASE("print-config masks the password", "[system][cli]") {
  TempDir dir;
  const auto result =
      run_tumbled(dir, {"--config", TUMBLED_SOURCE_DIR "/config/tumbled.yaml", "--print-config"},
                  {{"INFLUX_PASSWORD", "hunter2"}});
  CHECK(result.code == 0);
  CHECK(result.output.find("hunter2") == std::string::npos);
  CHECK(result.output.find("batch_size") != std::string::npos);
}

TEST_CASE("version, help and bad usage", "[system][cli]") {
  TempDir dir;
  CHECK(run_tumbled(dir, {"--version"}).output.find("tumbled ") == 0);
  const auto help = run_tumbled(dir, {"--help"});
  CHECK(help.code == 0);
  CHECK(help.output.find("--check-config") != std::string::npos);
  CHECK(run_tumbled(dir, {"--bogus"}).code == 64);
  CHECK(run_tumbled(dir, {}).code == 64);
}

TEST_CASE("a listen address in use stops the daemon with a clear error", "[system][cli]") {
  TempDir dir;
  const auto port = free_port();
  // Hold the port with a listener of our own.
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(holder, 1) == 0);
  const auto config = write(dir, "tumbled.yaml",
                            "state: {dir: " + (dir.path() / "state").string() +
                                "}\n"
                                "pipelines:\n  - name: a\n    source: {tcp: {listen: 127.0.0.1:" +
                                std::to_string(port) + "}}\n");
  const auto result = run_tumbled(dir, {"--config", config});
  CHECK(result.code == 1);
  CHECK(result.output.find("cannot listen on 127.0.0.1:" + std::to_string(port)) !=
        std::string::npos);
  ::close(holder);
}

TEST_CASE("insecure_skip_verify is warned about by --check-config and at startup",
          "[system][cli][tls]") {
  TempDir dir;
  const auto config = write(dir, "insecure.yaml",
                            "state: {dir: " + (dir.path() / "state").string() + "}\n"
                            "http: {listen: \"\"}\n"
                            "pipelines:\n"
                            "  - name: careless\n"
                            "    source: {tcp: {listen: 127.0.0.1:0}}\n"
                            "    sink:\n"
                            "      influxdb:\n"
                            "        url: https://127.0.0.1:1\n"
                            "        tls: {insecure_skip_verify: true}\n");
  const auto check = run_tumbled(dir, {"--config", config, "--check-config"});
  CHECK(check.code == 0);
  CHECK(check.output.find("configuration is valid") != std::string::npos);
  CHECK(check.output.find("WARNING: pipelines[0] (careless): "
                          "sink.influxdb.tls.insecure_skip_verify is true") != std::string::npos);

  ChildProcess daemon({TUMBLED_BINARY, "--config", config}, dir.path() / "daemon.log");
  REQUIRE(wait_until([&] { return daemon.log_text().find(" started") != std::string::npos; },
                     hang_guard()));
  const auto log = daemon.log_text();
  INFO(log);
  const auto warning = log.find("sink.influxdb.tls.insecure_skip_verify is true");
  CHECK(warning != std::string::npos);
  CHECK(warning < log.find(" started"));  // before anything else happens
  CHECK(log.find("writing to https://127.0.0.1:1 db=telemetry") != std::string::npos);
  daemon.signal(SIGTERM);
  CHECK(daemon.wait_for(hang_guard()) == 0);
}

TEST_CASE("deadletter list and replay report a corrupt record and exit 1", "[system][cli]") {
  TempDir dir;
  const auto state = (dir.path() / "state").string();
  {
    // A state store whose dead_letters column family holds a record too short to decode: a
    // well-formed key (lib/store/checkpoint_store.cpp: pipeline, '\0', 'd', 8-byte sequence
    // number) with a 3-byte value where at least 16 bytes are due.
    rocksdb::Options options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families{
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(options)},
        {"dead_letters", rocksdb::ColumnFamilyOptions(options)}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions(options), state, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    const std::string key("a\0d\0\0\0\0\0\0\0\1", 11);
    CHECK(db->Put(rocksdb::WriteOptions(), handles[1], key, "bad").ok());
    for (auto* handle : handles) CHECK(db->DestroyColumnFamilyHandle(handle).ok());
    CHECK(db->Close().ok());
  }
  const auto config =
      write(dir, "tumbled.yaml", "state: {dir: " + state + "}\npipelines:\n  - name: a\n");
  const auto list = run_tumbled(dir, {"deadletter", "list", "--config", config});
  INFO(list.output);
  CHECK(list.code == 1);
  CHECK(list.output.find("tumbled: cannot read the dead letters in " + state +
                         ": corrupt dead letter in state store") != std::string::npos);
  const auto replay = run_tumbled(dir, {"deadletter", "replay", "--config", config});
  INFO(replay.output);
  CHECK(replay.code == 1);
  CHECK(replay.output.find("nothing was requeued") != std::string::npos);
}
