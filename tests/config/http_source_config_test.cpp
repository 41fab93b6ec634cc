// Unit tests for the config keys of the HTTP source (source.http): what setting it changes
// (format line_protocol by default, TCP keys refused), its own keys, their errors with the
// file's line and the key's path, listen collisions, masking of the token, and the warning for
// an endpoint reachable from other machines without TLS and authentication.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.hpp"

using namespace tumbled::config;

namespace {

const EnvLookup kEnv = [](const std::string& name) -> std::optional<std::string> {
  if (name == "TUMBLED_TOKEN") return "s3cret";
  return std::nullopt;
};

PipelineConfig pipeline_of(const std::string& yaml) {
  const Config c = parse(yaml, "t.yaml", kEnv);
  REQUIRE(c.pipelines.size() == 1);
  return c.pipelines.at(0);
}

std::string error_of(const std::string& yaml) {
  try {
    parse(yaml, "t.yaml", kEnv);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// Lines 1-4: one pipeline named a reading HTTP on 127.0.0.1:8186.
const std::string kHttp =
    "pipelines:\n  - name: a\n    source:\n      http:\n        listen: 127.0.0.1:8186\n";

// A PEM file with `text` in a temp dir, removed at the end of the test.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& name, const std::string& text)
      : path(std::filesystem::temp_directory_path() /
             ("tumbled-http-config-" + std::to_string(::getpid()) + "-" + name)) {
    std::ofstream(path) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

}  // namespace

TEST_CASE("http source: defaults, and line protocol without saying so", "[config][http_source]") {
  const PipelineConfig p = pipeline_of(kHttp);
  CHECK(p.reads_http());
  CHECK(p.source_listen() == Endpoint{"127.0.0.1", 8186});
  CHECK(p.format == "line_protocol");
  CHECK(p.measurement.empty());  // line protocol's defaults: each line's measurement, no tags
  CHECK(p.tags.empty());
  CHECK(p.http.max_body_bytes == 25u << 20);
  CHECK(p.http.max_connections == 256);
  CHECK(p.http.token.empty());
  CHECK(p.http.tls_cert_file.empty());

  const PipelineConfig tcp = pipeline_of("pipelines:\n  - name: a\n");
  CHECK_FALSE(tcp.reads_http());
  CHECK(tcp.source_listen() == Endpoint{"127.0.0.1", 9000});
  CHECK(tcp.format == "integers");
  // `listen: ""` is the TCP source, as if absent.
  CHECK_FALSE(pipeline_of("pipelines:\n  - name: a\n    source: {http: {listen: \"\"}}\n")
                  .reads_http());
}

TEST_CASE("http source: its keys", "[config][http_source]") {
  const PipelineConfig p = pipeline_of(kHttp +
                                       "        max_body_bytes: 64KiB\n"
                                       "        max_connections: 8\n"
                                       "        auth: {token: \"${TUMBLED_TOKEN}\"}\n"
                                       "      precision: s\n");
  CHECK(p.http.max_body_bytes == 65536);
  CHECK(p.http.max_connections == 8);
  CHECK(p.http.token == "s3cret");
  CHECK(p.precision == "s");

  const auto [text, bytes] = GENERATE(table<std::string, std::size_t>({
      {"1024", 1024},
      {"2048", 2048},
      {"1KiB", 1024},
      {"25MiB", 25u << 20},
      {"1GiB", 1u << 30},
  }));
  CAPTURE(text);
  CHECK(pipeline_of(kHttp + "        max_body_bytes: " + text + "\n").http.max_body_bytes == bytes);
}

TEST_CASE("http source: errors name the key and the line", "[config][http_source]") {
  const auto [yaml, expected] = GENERATE(table<std::string, std::string>({
      {kHttp + "      format: integers\n",
       "t.yaml:6: pipelines[0].source.format: source.http takes line protocol only"},
      {kHttp + "      tcp: {listen: 127.0.0.1:9000}\n",
       "t.yaml:6: pipelines[0].source.tcp.listen: only allowed with the TCP source "
       "(neither source.http nor source.kafka) (listen is 127.0.0.1:8186)"},
      {kHttp + "      tcp: {idle_timeout: 1m}\n",
       "t.yaml:6: pipelines[0].source.tcp.idle_timeout: only allowed with the TCP source"},
      {"pipelines:\n  - name: a\n    source: {http: {max_connections: 3}}\n",
       "t.yaml:3: pipelines[0].source.http.max_connections: only allowed with "
       "source.http.listen set"},
      {kHttp + "        max_body_bytes: 10MB\n",
       "t.yaml:6: pipelines[0].source.http.max_body_bytes: expected a number of bytes, "
       "optionally with KiB, MiB or GiB, got \"10MB\""},
      {kHttp + "        max_body_bytes: 512\n",
       "t.yaml:6: pipelines[0].source.http.max_body_bytes: out of range: 512 (expected "
       "1KiB..1GiB)"},
      {kHttp + "        max_body_bytes: 2GiB\n",
       "t.yaml:6: pipelines[0].source.http.max_body_bytes: out of range: 2GiB"},
      {kHttp + "        max_body_bytes: 99999999999999999999999\n",
       "t.yaml:6: pipelines[0].source.http.max_body_bytes: out of range"},
      {kHttp + "        max_body_bytes: -1\n",
       "t.yaml:6: pipelines[0].source.http.max_body_bytes: expected a number of bytes"},
      {kHttp + "        max_connections: 0\n",
       "t.yaml:6: pipelines[0].source.http.max_connections: out of range: 0"},
      {kHttp + "        auth: {token: \"${UNSET_TOKEN}\"}\n",
       "t.yaml:6: pipelines[0].source.http.auth.token: environment variable UNSET_TOKEN is "
       "not set"},
      {kHttp + "        tls: {cert_file: /nonexistent/cert.pem}\n",
       "t.yaml:6: pipelines[0].source.http.tls.cert_file: cannot read \"/nonexistent/cert.pem\""},
      {kHttp + "        listen: 127.0.0.1:80800\n",
       "pipelines[0].source.http.listen: "},
  }));
  CAPTURE(yaml);
  const std::string message = error_of(yaml);
  CHECK_THAT(message, Catch::Contains(expected));
}

TEST_CASE("http source: TLS needs a certificate and its key", "[config][http_source]") {
  const TempFile cert("cert.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  const TempFile key("key.pem", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
  const std::string tls = kHttp + "        tls: {cert_file: " + cert.path.string();
  const PipelineConfig p = pipeline_of(tls + ", key_file: " + key.path.string() + "}\n");
  CHECK(p.http.tls_cert_file == cert.path.string());
  CHECK(p.http.tls_key_file == key.path.string());

  CHECK_THAT(error_of(kHttp + "        tls: {key_file: " + key.path.string() + "}\n"),
             Catch::Contains("t.yaml:6: pipelines[0].source.http.tls.key_file: only allowed with "
                             "source.http.tls.cert_file set"));
  CHECK_THAT(error_of(tls + "}\n"),
             Catch::Contains("t.yaml:6: pipelines[0].source.http.tls.key_file: required key is "
                             "missing (needed with source.http.tls.cert_file set)"));
  // Each file must hold what it is for: a key is no certificate, a certificate no key.
  CHECK_THAT(error_of(kHttp + "        tls: {cert_file: " + key.path.string() +
                      ", key_file: " + key.path.string() + "}\n"),
             Catch::Contains("source.http.tls.cert_file: no PEM certificate"));
  CHECK_THAT(error_of(tls + ", key_file: " + cert.path.string() + "}\n"),
             Catch::Contains("source.http.tls.key_file: no PEM private key"));
}

TEST_CASE("http source: listen addresses may not collide", "[config][http_source]") {
  // Two HTTP pipelines: their (unused) TCP defaults do not collide, their HTTP addresses do.
  const std::string two_http =
      "pipelines:\n  - name: a\n    source: {http: {listen: 127.0.0.1:8186}}\n"
      "  - name: b\n    source: {http: {listen: 127.0.0.1:8187}}\n";
  CHECK(parse(two_http, "t.yaml", kEnv).pipelines.size() == 2);
  CHECK_THAT(error_of("pipelines:\n  - name: a\n    source: {http: {listen: 127.0.0.1:9000}}\n"
                      "  - name: b\n"),
             Catch::Contains("t.yaml:4: pipelines[1].source.tcp.listen: listen address "
                             "127.0.0.1:9000 (the default) collides with 127.0.0.1:9000 of "
                             "pipelines[0] on line 3"));
  CHECK_THAT(error_of("http: {listen: 127.0.0.1:8186}\n" + kHttp),
             Catch::Contains("http.listen: listen address 127.0.0.1:8186 collides with "
                             "127.0.0.1:8186 of pipelines[0].source.http.listen"));
}

TEST_CASE("http source: the token is masked when printed", "[config][http_source]") {
  const Config c = parse(kHttp + "        auth: {token: \"${TUMBLED_TOKEN}\"}\n", "t.yaml", kEnv);
  const std::string yaml = to_yaml(c);
  CHECK(yaml.find("s3cret") == std::string::npos);
  CHECK(yaml.find("token: \"******\"") != std::string::npos);
  CHECK(yaml.find("max_body_bytes: 25MiB") != std::string::npos);
  CHECK(yaml.find("tcp") == std::string::npos);  // the TCP keys do not apply
  // What was printed loads again (but for the mask) to the same settings.
  const EnvLookup masked = kEnv;
  CHECK(parse(yaml, "printed.yaml", masked).pipelines.at(0).http.max_body_bytes == 25u << 20);
}

TEST_CASE("http source: warned when other machines reach it without TLS and auth",
          "[config][http_source]") {
  const auto warned = [](const std::string& yaml) {
    const auto all = warnings(parse(yaml, "t.yaml", kEnv));
    return all.empty() ? std::string() : all.front();
  };
  CHECK(warned(kHttp).empty());  // loopback
  CHECK(warned("pipelines:\n  - name: a\n    source: {http: {listen: \"[::1]:8186\"}}\n").empty());
  CHECK(warned("pipelines:\n  - name: a\n    source: {http: {listen: localhost:8186}}\n").empty());
  const std::string open = "pipelines:\n  - name: a\n    source: {http: {listen: 0.0.0.0:8186}}\n";
  CHECK_THAT(warned(open),
             Catch::Contains("pipelines[0] (a): source.http.listen 0.0.0.0:8186 is not a loopback "
                             "address, and the endpoint has neither source.http.tls nor "
                             "source.http.auth"));
  const std::string with_token =
      "pipelines:\n  - name: a\n    source: {http: {listen: 10.1.2.3:8186, auth: {token: x}}}\n";
  CHECK_THAT(warned(with_token), Catch::Contains("has no source.http.tls"));
}

TEST_CASE("is_loopback_host", "[config][http_source]") {
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.255.0.9"));
  CHECK(is_loopback_host("::1"));
  CHECK(is_loopback_host("LocalHost"));
  CHECK_FALSE(is_loopback_host("128.0.0.1"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("::"));
  CHECK_FALSE(is_loopback_host("::2"));
  CHECK_FALSE(is_loopback_host("example.com"));
}
