// Component tests for sink::InfluxClient's reach: API v2 (target, Token header), gzip bodies and
// TLS, against an InfluxDB stand-in written here with Boost.Beast that checks what it receives —
// the target, the headers, the body after gunzip, the TLS handshake and the SNI it carried — and
// against a real influxd for gzip. Certificates are made in the test with OpenSSL's API: a
// self-signed one the client trusts through tls.ca_file, one from a CA it does not trust, one
// for another host name.
//
// Everything runs on one io_context driven from the test's thread.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "sink/gzip.hpp"
#include "sink/influx_writer.hpp"
#include "sink/point_queue.hpp"
#include "support/influxd.hpp"
#include "support/process.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using std::chrono::milliseconds;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using tumbled::config::GzipMode;
using tumbled::config::InfluxSinkConfig;
using tumbled::sink::InfluxClient;
using tumbled::sink::WriteResult;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// ---- Certificates ------------------------------------------------------------------------------

struct Pem {
  std::string certificate;
  std::string key;
};

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

void require_ok(int result, const char* what) {
  if (result <= 0) throw std::runtime_error(std::string("OpenSSL: ") + what + " failed");
}

std::string drain(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// A self-signed certificate (its own CA) for `alt_names`, e.g. "DNS:localhost,IP:127.0.0.1".
Pem self_signed(const std::string& common_name, const std::string& alt_names) {
  static long serial = 1;
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error("OpenSSL: EC key generation failed");
  CertPtr cert(X509_new());
  require_ok(X509_set_version(cert.get(), 2), "X509_set_version");
  require_ok(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++), "serial");
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  require_ok(X509_set_pubkey(cert.get(), key.get()), "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  require_ok(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                        -1, -1, 0),
             "subject");
  require_ok(X509_set_issuer_name(cert.get(), name), "issuer");
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : std::vector<std::pair<int, std::string>>{
           {NID_basic_constraints, "critical,CA:TRUE"},
           {NID_key_usage, "critical,digitalSignature,keyCertSign"},
           {NID_subject_alt_name, alt_names}}) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    if (!extension) throw std::runtime_error("OpenSSL: extension " + value);
    const int added = X509_add_ext(cert.get(), extension, -1);
    X509_EXTENSION_free(extension);
    require_ok(added, "X509_add_ext");
  }
  require_ok(X509_sign(cert.get(), key.get(), EVP_sha256()), "X509_sign");

  BioPtr cert_out(BIO_new(BIO_s_mem()));
  BioPtr key_out(BIO_new(BIO_s_mem()));
  require_ok(PEM_write_bio_X509(cert_out.get(), cert.get()), "PEM_write_bio_X509");
  require_ok(
      PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr),
      "PEM_write_bio_PrivateKey");
  return {drain(cert_out.get()), drain(key_out.get())};
}

std::string write_file(const tumbled::test::TempDir& dir, const std::string& name,
                       const std::string& text) {
  const auto path = (dir.path() / name).string();
  std::ofstream(path) << text;
  return path;
}

// ---- The InfluxDB stand-in ---------------------------------------------------------------------

struct Seen {
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string raw_body;                        // as it came over the wire
  std::optional<std::string> body;             // after gunzip; nullopt if that failed
  int connection = 0;
  std::string sni;  // the server name the TLS client sent, "" for none or plain HTTP

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "(none)" : it->second;
  }
};

struct Answer {
  int status = 204;
  bool close_after = false;  // "Connection: close", then a TLS shutdown and close
};

class StandIn {
 public:
  // Plain HTTP, or TLS with `pem` as the server's certificate and key.
  explicit StandIn(asio::io_context& io, std::optional<Pem> pem = std::nullopt,
                   bool handshake = true, const std::string& address = "127.0.0.1")
      : io_(io),
        acceptor_(io, tcp::endpoint(asio::ip::make_address(address), 0)),
        handshake_(handshake) {
    if (pem) {
      tls_.emplace(ssl::context::tls_server);
      tls_->use_certificate_chain(asio::buffer(pem->certificate));
      tls_->use_private_key(asio::buffer(pem->key), ssl::context::pem);
    }
    asio::co_spawn(io_, accept_loop(), [this](std::exception_ptr e) { record(e); });
  }
  ~StandIn() { stop(); }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void answer(std::function<Answer(const Seen&)> responder) { responder_ = std::move(responder); }
  const std::vector<Seen>& requests() const { return requests_; }
  int connections() const { return accepted_; }
  const std::vector<std::string>& handshake_failures() const { return handshake_failures_; }
  int clean_tls_shutdowns() const { return clean_shutdowns_; }
  std::exception_ptr failure() const { return failure_; }

  void stop() {
    beast::error_code ignored;
    acceptor_.close(ignored);
    for (auto& weak : sockets_) {
      if (auto socket = weak.lock()) socket->close(ignored);
    }
  }

 private:
  void record(std::exception_ptr e) {
    if (e && !failure_) failure_ = e;
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(io_);
      auto [error] = co_await acceptor_.async_accept(*socket, nothrow);
      if (error) co_return;
      sockets_.push_back(socket);
      asio::co_spawn(io_, session(socket, accepted_++),
                     [this](std::exception_ptr e) { record(e); });
    }
  }

  asio::awaitable<void> session(std::shared_ptr<tcp::socket> socket, int id) {
    if (!tls_) {
      co_await serve(*socket, id, "");
      co_return;
    }
    if (!handshake_) {  // accepts, then never says a word: the client's handshake must time out
      co_await socket->async_wait(tcp::socket::wait_error, nothrow);  // until stop()
      co_return;
    }
    ssl::stream<tcp::socket&> stream(*socket, *tls_);
    auto [handshake_error] = co_await stream.async_handshake(ssl::stream_base::server, nothrow);
    if (handshake_error) {
      handshake_failures_.push_back(handshake_error.message());
      co_return;
    }
    const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    if (co_await serve(stream, id, sni ? sni : "")) {
      auto [shutdown_error] = co_await stream.async_shutdown(nothrow);
      if (!shutdown_error) ++clean_shutdowns_;
    }
  }

  // Answers requests until the client goes away (false) or an answer closes (true).
  template <class Stream>
  asio::awaitable<bool> serve(Stream& stream, int id, std::string sni) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(std::uint64_t{1} << 30);
      auto [read_error, read] = co_await http::async_read(stream, buffer, parser, nothrow);
      if (read_error) co_return false;
      const auto& request = parser.get();
      Seen seen;
      seen.target = std::string(request.target());
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        seen.headers[name] = std::string(field.value());
      }
      seen.raw_body = request.body();
      seen.body = seen.header("content-encoding") == "gzip"
                      ? tumbled::sink::gzip_decompress(seen.raw_body)
                      : std::optional<std::string>(seen.raw_body);
      seen.connection = id;
      seen.sni = sni;
      requests_.push_back(seen);
      const Answer answer = responder_ ? responder_(seen) : Answer{};

      http::response<http::string_body> response{static_cast<http::status>(answer.status), 11};
      response.keep_alive(!answer.close_after);
      response.prepare_payload();
      auto [write_error, written] = co_await http::async_write(stream, response, nothrow);
      if (write_error) co_return false;
      if (answer.close_after) co_return true;
    }
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::optional<ssl::context> tls_;
  bool handshake_ = true;
  std::function<Answer(const Seen&)> responder_;
  std::vector<Seen> requests_;
  std::vector<std::weak_ptr<tcp::socket>> sockets_;
  std::vector<std::string> handshake_failures_;
  int accepted_ = 0;
  int clean_shutdowns_ = 0;
  std::exception_ptr failure_;
};

// ---- Driving the client ------------------------------------------------------------------------

// Runs `io` until done() holds; false only after the hang guard, never in a test that passes.
template <class Predicate>
bool run_until(asio::io_context& io, Predicate&& done,
               milliseconds timeout = tumbled::test::hang_guard()) {
  const auto deadline = Steady::now() + timeout;
  while (!done()) {
    if (Steady::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(5ms);
  }
  return true;
}

WriteResult write(asio::io_context& io, InfluxClient& client, const std::string& body) {
  std::optional<WriteResult> result;
  std::exception_ptr error;
  asio::co_spawn(io, client.write(body), [&](std::exception_ptr e, WriteResult r) {
    error = e;
    result = std::move(r);
  });
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  if (error) std::rethrow_exception(error);
  return *result;
}

// "m,n=<k> v=<k>i <k>\n" for k in [first, last].
std::string lines(std::uint64_t first, std::uint64_t last) {
  std::string out;
  for (auto k = first; k <= last; ++k) {
    const auto n = std::to_string(k);
    out += "m,n=" + n + " v=" + n + "i " + n + "\n";
  }
  return out;
}

InfluxSinkConfig settings_for(const std::string& scheme, const std::string& host,
                              std::uint16_t port) {
  InfluxSinkConfig s;
  s.scheme = scheme;
  s.endpoint = {host, port};
  // Tests that want a timeout set their own; the others must never race one (sanitizer builds,
  // TLS handshakes and influxd on a loaded machine).
  s.request_timeout = tumbled::test::hang_guard();
  s.gzip = GzipMode::never;
  return s;
}

// An IPv4 address of this machine that is not loopback, to look like a remote InfluxDB; "" if
// there is none.
std::string non_loopback_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (const ifaddrs* i = list; i && found.empty(); i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
        !(i->ifa_flags & IFF_UP)) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text)) found = text;
  }
  freeifaddrs(list);
  return found;
}

void check_clean(const StandIn& server) {
  if (!server.failure()) return;
  try {
    std::rethrow_exception(server.failure());
  } catch (const std::exception& e) {
    FAIL("the stand-in threw: " << e.what());
  }
}

}  // namespace

// ---- API v2 ------------------------------------------------------------------------------------

TEST_CASE("InfluxClient writes to /api/v2/write with org, bucket and a Token header",
          "[influx-client]") {
  asio::io_context io;
  StandIn server(io);
  auto settings = settings_for("http", "127.0.0.1", server.port());
  settings.api = "v2";
  settings.org = "my org";
  settings.bucket = "telemetry/autogen";
  settings.database = "ignored-in-v2";
  settings.username = "ignored";
  settings.password = "ignored";
  std::string target = "/api/v2/write?org=my%20org&bucket=telemetry%2Fautogen&precision=ms";
  std::string authorization = "(none)";
  SECTION("with a token") {
    settings.token = "s3cr3t-t0k3n==";
    authorization = "Token s3cr3t-t0k3n==";
  }
  SECTION("without a token: no Authorization header at all") {}
  SECTION("under a path prefix") {
    settings.path_prefix = "/influx";
    settings.token = "t";
    target = "/influx" + target;
    authorization = "Token t";
  }
  CHECK(tumbled::sink::write_target(settings) == target);
  CHECK(tumbled::sink::describe_destination(settings) ==
        "http://127.0.0.1:" + std::to_string(server.port()) + settings.path_prefix +
            " org=my org bucket=telemetry/autogen");

  InfluxClient client(io.get_executor(), settings);
  const WriteResult result = write(io, client, lines(1, 3));
  CHECK(result.status == 204);
  REQUIRE(server.requests().size() == 1);
  const Seen& seen = server.requests()[0];
  CHECK(seen.target == target);
  CHECK(seen.header("authorization") == authorization);
  CHECK(seen.header("content-encoding") == "(none)");
  CHECK(seen.body == lines(1, 3));
  for (const auto& [name, value] : seen.headers) {
    CHECK(value.find("ignored") == std::string::npos);  // nothing of v1 leaks into a v2 request
  }
  check_clean(server);
}

TEST_CASE("InfluxClient gives v2 hints when InfluxDB refuses a batch for good", "[influx-client]") {
  asio::io_context io;
  StandIn server(io);
  auto settings = settings_for("http", "127.0.0.1", server.port());
  settings.api = "v2";
  settings.org = "o";
  settings.bucket = "b";
  settings.batch_size = 1;
  server.answer([](const Seen&) { return Answer{404}; });
  tumbled::sink::PointQueue queue;
  std::vector<std::string> errors;
  std::ostringstream log_text;
  auto log = std::make_shared<spdlog::logger>(
      "influx-test", std::make_shared<spdlog::sinks::ostream_sink_st>(log_text));
  tumbled::sink::BatchWriter writer(
      io.get_executor(), settings, queue,
      [&](const tumbled::sink::PointQueue::Batch&, const std::string& error) {
        errors.push_back(error);
        return true;
      },
      log, [] { return tumbled::sink::TimeMs{1'000'000}; });
  bool done = false;
  asio::co_spawn(io, writer.run(), [&](std::exception_ptr) { done = true; });
  queue.mark_durable_through(queue.push(lines(1, 1), 1'000'000));
  writer.wake();
  REQUIRE(run_until(io, [&] { return !errors.empty(); }));
  CHECK_THAT(errors[0], Catch::Contains("HTTP 404"));
  CHECK_THAT(errors[0], Catch::Contains("check that sink.influxdb.org and bucket exist"));
  writer.stop();
  REQUIRE(run_until(io, [&] { return done; }));
}

// ---- gzip --------------------------------------------------------------------------------------

TEST_CASE("InfluxClient gzips bodies as sink.influxdb.gzip says", "[influx-client][gzip]") {
  const std::string small = lines(1, 5);
  const std::string big = lines(1, 1000);  // ~26 KB
  REQUIRE(small.size() < tumbled::sink::kGzipAutoMinBytes);
  REQUIRE(big.size() >= tumbled::sink::kGzipAutoMinBytes);

  const auto [mode, body_name, remote, gzipped] =
      GENERATE(table<GzipMode, std::string, bool, bool>({
          {GzipMode::always, "small", false, true},
          {GzipMode::always, "big", false, true},
          {GzipMode::automatic, "small", true, false},
          {GzipMode::automatic, "big", true, true},
          {GzipMode::automatic, "big", false, false},  // over loopback gzip only costs time
          {GzipMode::never, "small", false, false},
          {GzipMode::never, "big", true, false},
      }));
  const std::string& body = body_name == "big" ? big : small;
  CAPTURE(static_cast<int>(mode), body_name, remote);
  const std::string address = remote ? non_loopback_address() : "127.0.0.1";
  if (address.empty()) {
    WARN("no non-loopback IPv4 address on this machine: the remote cases are not tested");
    return;
  }
  asio::io_context io;
  StandIn server(io, std::nullopt, true, address);
  auto settings = settings_for("http", address, server.port());
  settings.gzip = mode;
  InfluxClient client(io.get_executor(), settings);
  // Twice: the second goes over the kept-alive connection, with the compressor reused.
  for (int attempt = 0; attempt < 2; ++attempt) {
    CHECK(write(io, client, body).status == 204);
  }
  REQUIRE(server.requests().size() == 2);
  for (const Seen& seen : server.requests()) {
    CHECK(seen.header("content-encoding") == (gzipped ? "gzip" : "(none)"));
    CHECK(seen.header("content-length") == std::to_string(seen.raw_body.size()));
    REQUIRE(seen.body.has_value());
    CHECK(*seen.body == body);  // exactly the line protocol, once gunzipped
    if (gzipped && body_name == "big") CHECK(seen.raw_body.size() * 2 < body.size());
    CHECK(seen.connection == 0);
  }
  check_clean(server);
}

// ---- TLS ---------------------------------------------------------------------------------------

TEST_CASE("InfluxClient speaks TLS: SNI, certificate and host name verified, keep-alive",
          "[influx-client][tls]") {
  tumbled::test::TempDir dir;
  const Pem pem = self_signed("tumbled test server", "DNS:localhost,IP:127.0.0.1");
  asio::io_context io;
  StandIn server(io, pem);
  std::string host;
  std::string sni;
  SECTION("by host name: SNI carries it") {
    host = "localhost";
    sni = "localhost";
  }
  SECTION("by IP address: no SNI, the certificate's IP entry matches") {
    host = "127.0.0.1";
  }
  auto settings = settings_for("https", host, server.port());
  settings.tls_ca_file = write_file(dir, "ca.pem", pem.certificate);
  settings.api = "v2";
  settings.org = "o";
  settings.bucket = "b";
  settings.token = "tok";
  settings.gzip = GzipMode::always;
  InfluxClient client(io.get_executor(), settings);

  for (std::uint64_t k = 1; k <= 3; ++k) {
    const WriteResult result = write(io, client, lines(k, k));
    INFO(result.error);
    CHECK(result.status == 204);
  }
  REQUIRE(server.requests().size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    const Seen& seen = server.requests()[i];
    CHECK(seen.sni == sni);
    CHECK(seen.target == "/api/v2/write?org=o&bucket=b&precision=ms");
    CHECK(seen.header("authorization") == "Token tok");
    CHECK(seen.header("host") == host + ":" + std::to_string(server.port()));
    CHECK(seen.body == lines(i + 1, i + 1));
    CHECK(seen.connection == 0);  // one handshake, then keep-alive
  }
  CHECK(server.connections() == 1);
  CHECK(server.handshake_failures().empty());
  check_clean(server);
}

TEST_CASE("InfluxClient::ping asks GET /ping with the sink's TLS settings, on its own connection",
          "[influx-client][tls]") {
  // /ready pings a sink that has not written yet through this: https sinks included.
  tumbled::test::TempDir dir;
  const Pem pem = self_signed("tumbled test server", "DNS:localhost,IP:127.0.0.1");
  asio::io_context io;
  StandIn server(io, pem);
  auto settings = settings_for("https", "localhost", server.port());
  settings.tls_ca_file = write_file(dir, "ca.pem", pem.certificate);
  settings.path_prefix = "/influx";
  InfluxClient client(io.get_executor(), settings);
  std::optional<WriteResult> result;
  asio::co_spawn(io, client.ping(), [&](std::exception_ptr e, WriteResult r) {
    REQUIRE_FALSE(e);
    result = std::move(r);
  });
  REQUIRE(run_until(io, [&] { return result.has_value(); }));
  INFO(result->error);
  CHECK(result->status == 204);
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].target == "/influx/ping");
  CHECK(server.requests()[0].sni == "localhost");
  CHECK(server.handshake_failures().empty());
  check_clean(server);
}

TEST_CASE("InfluxClient refuses a certificate that does not verify, as a transport error",
          "[influx-client][tls]") {
  tumbled::test::TempDir dir;
  const Pem trusted = self_signed("trusted", "DNS:localhost,IP:127.0.0.1");
  const Pem stranger = self_signed("stranger", "DNS:localhost,IP:127.0.0.1");
  const Pem elsewhere = self_signed("elsewhere", "DNS:influx.example.org");

  std::optional<Pem> served;
  std::string ca_file;
  std::string host = "localhost";
  std::string why;
  SECTION("signed by a CA tls.ca_file does not hold") {
    served = stranger;
    ca_file = write_file(dir, "ca.pem", trusted.certificate);
    why = "certificate verify failed: self-signed certificate";
  }
  SECTION("self-signed, checked against the system's CAs") {
    served = trusted;
    why = "certificate verify failed: self-signed certificate";
  }
  SECTION("trusted, but for another host name") {
    served = elsewhere;
    ca_file = write_file(dir, "ca.pem", elsewhere.certificate);
    why = "certificate verify failed: certificate is not valid for localhost";
  }
  SECTION("trusted, but for a host name while the URL has an IP address") {
    served = elsewhere;
    host = "127.0.0.1";
    ca_file = write_file(dir, "ca.pem", elsewhere.certificate);
    why = "certificate verify failed: certificate is not valid for 127.0.0.1";
  }
  asio::io_context io;
  StandIn server(io, *served);
  auto settings = settings_for("https", host, server.port());
  settings.tls_ca_file = ca_file;

  {
    InfluxClient client(io.get_executor(), settings);
    const WriteResult result = write(io, client, lines(1, 1));
    CHECK(result.status == 0);  // a transport error: BatchWriter retries it
    CHECK_FALSE(result.timed_out);
    CHECK(result.error ==
          "TLS handshake with " + host + ":" + std::to_string(server.port()) + ": " + why);
    REQUIRE(run_until(io, [&] { return server.handshake_failures().size() == 1; }));
    CHECK(server.requests().empty());  // nothing was sent
  }

  // insecure_skip_verify accepts it, whatever is wrong with it.
  settings.tls_insecure_skip_verify = true;
  InfluxClient careless(io.get_executor(), settings);
  const WriteResult result = write(io, careless, lines(2, 2));
  INFO(result.error);
  CHECK(result.status == 204);
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].body == lines(2, 2));
  check_clean(server);
}

TEST_CASE("BatchWriter retries a TLS verification failure with backoff and logs it",
          "[influx-client][tls]") {
  const Pem stranger = self_signed("stranger", "DNS:localhost");
  asio::io_context io;
  StandIn server(io, stranger);
  auto settings = settings_for("https", "localhost", server.port());  // system CAs
  settings.batch_size = 1;
  settings.retry.initial_backoff = 10ms;
  settings.retry.max_backoff = 20ms;
  tumbled::sink::PointQueue queue;
  std::ostringstream log_text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(log_text);
  sink->set_pattern("%l %v");
  auto log = std::make_shared<spdlog::logger>("influx-test", sink);
  int dead_letters = 0;
  tumbled::sink::BatchWriter writer(
      io.get_executor(), settings, queue,
      [&](const tumbled::sink::PointQueue::Batch&, const std::string&) {
        ++dead_letters;
        return true;
      },
      log, [] { return tumbled::sink::TimeMs{1'000'000}; });
  bool done = false;
  asio::co_spawn(io, writer.run(), [&](std::exception_ptr) { done = true; });
  queue.mark_durable_through(queue.push(lines(1, 1), 1'000'000));
  writer.wake();

  REQUIRE(run_until(io, [&] { return writer.counters().failed_attempts >= 3; }));
  CHECK(writer.in_retry_episode());
  CHECK(queue.size() == 1);  // kept, to be sent once the certificate is fixed
  CHECK(dead_letters == 0);
  CHECK(server.requests().empty());
  INFO(log_text.str());
  CHECK(log_text.str().find("warning InfluxDB write of 1 points failed: TLS handshake with "
                            "localhost:" +
                            std::to_string(server.port()) +
                            ": certificate verify failed: self-signed certificate; retrying "
                            "with backoff") != std::string::npos);
  writer.stop();
  REQUIRE(run_until(io, [&] { return done; }));
}

TEST_CASE("InfluxClient shuts TLS down when the server closes, then reconnects",
          "[influx-client][tls]") {
  tumbled::test::TempDir dir;
  const Pem pem = self_signed("server", "DNS:localhost");
  asio::io_context io;
  StandIn server(io, pem);
  server.answer([](const Seen& seen) { return Answer{204, seen.body == lines(1, 1)}; });
  auto settings = settings_for("https", "localhost", server.port());
  settings.tls_ca_file = write_file(dir, "ca.pem", pem.certificate);
  InfluxClient client(io.get_executor(), settings);

  CHECK(write(io, client, lines(1, 1)).status == 204);  // answered with Connection: close
  REQUIRE(run_until(io, [&] { return server.clean_tls_shutdowns() == 1; }));
  CHECK(write(io, client, lines(2, 2)).status == 204);
  REQUIRE(server.requests().size() == 2);
  CHECK(server.requests()[0].connection == 0);
  CHECK(server.requests()[1].connection == 1);
  CHECK(server.requests()[1].sni == "localhost");
  check_clean(server);
}

TEST_CASE("InfluxClient's TLS handshake is bounded by request_timeout", "[influx-client][tls]") {
  const Pem pem = self_signed("server", "DNS:localhost");
  asio::io_context io;
  StandIn server(io, pem, /*handshake=*/false);
  auto settings = settings_for("https", "127.0.0.1", server.port());
  settings.request_timeout = 300ms;
  settings.tls_insecure_skip_verify = true;
  InfluxClient client(io.get_executor(), settings);
  const auto began = Steady::now();
  const WriteResult result = write(io, client, lines(1, 1));
  const auto took = Steady::now() - began;
  CHECK(result.status == 0);
  CHECK(result.timed_out);  // the server never answers the handshake: nothing else ends it
  CHECK_THAT(result.error, Catch::EndsWith("no handshake within request_timeout"));
  CHECK(took >= 295ms);
  check_clean(server);
}

TEST_CASE("InfluxClient refuses a tls.ca_file without certificates at construction",
          "[influx-client][tls]") {
  tumbled::test::TempDir dir;
  asio::io_context io;
  auto settings = settings_for("https", "localhost", 8086);
  settings.tls_ca_file = write_file(dir, "ca.pem", "not a certificate\n");
  CHECK_THROWS_WITH(InfluxClient(io.get_executor(), settings),
                    Catch::StartsWith("sink.influxdb.tls.ca_file \"" + settings.tls_ca_file +
                                      "\": cannot load CA certificates from it (expected PEM)"));
  settings.tls_ca_file.clear();  // the system's CAs
  CHECK_NOTHROW(InfluxClient(io.get_executor(), settings));
}

// ---- gzip against a real InfluxDB ---------------------------------------------------------------

TEST_CASE("InfluxDB stores gzipped writes exactly", "[influx-client][gzip][influxd]") {
  tumbled::test::InfluxServer influxd;
  influxd.create_database("gz");
  asio::io_context io;
  auto settings = settings_for("http", "127.0.0.1", influxd.port());
  settings.database = "gz";
  settings.gzip = GzipMode::always;
  InfluxClient client(io.get_executor(), settings);

  // A small body (gzip: true compresses it anyway) and a large one, points 1..5100.
  CHECK(write(io, client, lines(1, 100)).status == 204);
  CHECK(write(io, client, lines(101, 5100)).status == 204);
  const auto rows = influxd.series_values("gz", "SELECT count(v), sum(v) FROM m");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].at(1).to_number<std::int64_t>() == 5100);
  CHECK(rows[0].at(2).to_number<std::int64_t>() == 5100 * 5101 / 2);
  // Each point by itself, e.g. the last one with its tag and timestamp.
  const auto last = influxd.series_values("gz", "SELECT v FROM m WHERE n = '5100'");
  REQUIRE(last.size() == 1);
  CHECK(last[0].at(0).to_number<std::int64_t>() == 5100);
  CHECK(last[0].at(1).to_number<std::int64_t>() == 5100);
}

// ---- What gzip costs and saves (not part of the suite) ------------------------------------------
//
// build/tests/component_tests "[gzip-bench]": compresses tumbled-like bodies of 1 to 5000 points
// at zlib levels 1-6 (reusing the compressor, as InfluxClient does), then writes each raw and
// gzipped (level kGzipLevel) to a real influxd over loopback, printing medians. The figures in
// README's Writer section come from it.

namespace {

// What tumbled writes: one point per window, varied sums, 10 s apart.
std::string window_points(std::size_t n, std::uint64_t first_window) {
  std::string body;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t sum = (first_window + i) * 2654435761u % 100'000'000;
    body += "records,window=10-sec sum=" + std::to_string(sum) + "i " +
            std::to_string(1'795'538'790'000 + (first_window + i) * 10'000) + "\n";
  }
  return body;
}

template <class F>
double median_us(int runs, F&& f) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto began = Steady::now();
    f(i);
    times.push_back(std::chrono::duration<double, std::micro>(Steady::now() - began).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

TEST_CASE("gzip: compression cost against loopback writes to influxd", "[.][gzip-bench]") {
  tumbled::test::InfluxServer influxd;
  influxd.create_database("bench");
  asio::io_context io;
  for (const std::size_t points : {1, 100, 160, 1000, 5000}) {
    const int runs = points >= 5000 ? 41 : 201;
    const std::string body = window_points(points, 0);
    std::printf("\n%zu points, %zu bytes raw\n  level  bytes   ratio  compress us\n", points,
                body.size());
    for (int level = 1; level <= 6; ++level) {
      tumbled::sink::GzipCompressor compressor(level);
      std::size_t size = 0;
      const double us = median_us(runs, [&](int) { size = compressor.compress(body).size(); });
      std::printf("  %5d  %6zu  %5.1fx  %10.1f\n", level, size,
                  static_cast<double>(body.size()) / static_cast<double>(size), us);
    }
    std::uint64_t window = 1'000'000;  // new points each write: no overwrites
    for (const GzipMode mode : {GzipMode::never, GzipMode::always}) {
      auto settings = settings_for("http", "127.0.0.1", influxd.port());
      settings.database = "bench";
      settings.gzip = mode;
      InfluxClient client(io.get_executor(), settings);
      std::vector<std::string> bodies;
      for (int i = 0; i < runs + 1; ++i) {
        bodies.push_back(window_points(points, window));
        window += points;
      }
      REQUIRE(write(io, client, bodies.back()).status == 204);  // connect outside the timing
      const double us = median_us(runs, [&](int i) {
        REQUIRE(write(io, client, bodies[static_cast<std::size_t>(i)]).status == 204);
      });
      std::printf("  write to influxd over loopback, %s: %.0f us\n",
                  mode == GzipMode::never ? "raw " : "gzip", us);
    }
  }
}
