// Component tests for sink::BatchWriter and its InfluxClient over real sockets, against a scripted
// HTTP server written here with Boost.Beast: batching by size and interval, the durability gate,
// the request's target and headers, retries with jittered backoff and Retry-After, splitting a
// batch refused with 400/413 to isolate the points InfluxDB refuses, rejections and dead letters
// (and their rate-limited log), timeouts, keep-alive (including a stale idle connection) and the
// counters.
//
// Everything runs on one io_context driven from the test's thread (run_until), so the queue and
// the writer are only ever touched from the thread that runs their executor.
//
// No verdict depends on how fast the machine is: the tests wait for events (requests seen, the
// queue drained) with the hang guard as their only deadline, check the delays the writer chose
// through its on_pause() hook rather than by timing them (elapsed time is only ever checked as a
// lower bound), and every request_timeout that must pass is caused by the server (it never answers,
// or stops reading a body larger than the socket buffers hold), never by slowness.
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "sink/influx_writer.hpp"
#include "sink/point_queue.hpp"
#include "support/process.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using std::chrono::milliseconds;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using tumbled::sink::BatchWriter;
using tumbled::sink::PointQueue;
using tumbled::sink::SinkCounters;
using tumbled::sink::TimeMs;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// ---- The scripted InfluxDB stand-in -------------------------------------------------------------

// How the server answers one request.
struct Reply {
  int status = 204;
  std::string body;                                          // e.g. InfluxDB's {"error": ...}
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. Retry-After
  milliseconds delay{0};                                     // wait this long before answering
  std::size_t answer_once_seen = 0;  // > 0: answer only once this many requests have arrived
  bool answer = true;                // false: read the request and never answer it
  bool hang_up = false;      // read the request, then close the connection without answering
  bool close_after = false;  // answer with "Connection: close" and close
  bool drop_after = false;   // answer as keep-alive, then close the idle connection anyway
  bool stall_after = false;  // answer as keep-alive, then never read from the connection again
};

Reply status(int code, std::string body = {}) {
  Reply r;
  r.status = code;
  r.body = std::move(body);
  return r;
}

struct Request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  int connection = 0;  // which accepted connection, from 0
  Steady::time_point at;
  int answered = 0;  // the status the server answered, 0 if none (yet)

  std::optional<std::string> header(const std::string& name) const {
    const auto it = headers.find(name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
  }
};

class ScriptedServer {
 public:
  explicit ScriptedServer(asio::io_context& io)
      : io_(io),
        acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        stall_(io, Steady::time_point::max()) {
    asio::co_spawn(io_, accept_loop(), [this](std::exception_ptr e) { record(e); });
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // A small receive buffer for the connections accepted from now on (Linux doubles it), so that a
  // session that stops reading soon stops the client's send too.
  void small_receive_buffer() {
    acceptor_.set_option(asio::socket_base::receive_buffer_size(4096));
  }
  // Answers for the next requests, in order; once they run out every request gets a 204.
  void script(std::vector<Reply> replies) {
    for (auto& r : replies) script_.push_back(std::move(r));
  }
  // How to answer once the script has run out, by what was asked (instead of always 204).
  void respond(std::function<Reply(const Request&)> responder) { respond_ = std::move(responder); }
  const std::vector<Request>& requests() const { return requests_; }
  int connections() const { return accepted_; }
  int closed_connections() const { return closed_; }
  std::exception_ptr failure() const { return failure_; }

  void stop() {
    beast::error_code ignored;
    acceptor_.close(ignored);
    stall_.cancel();
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
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // bodies of many MB too
      auto [read_error, read] = co_await http::async_read(*socket, buffer, parser, nothrow);
      if (read_error) break;
      const http::request<http::string_body>& request = parser.get();
      Request seen;
      seen.method = std::string(request.method_string());
      seen.target = std::string(request.target());
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        seen.headers[name] = std::string(field.value());
      }
      seen.body = request.body();
      seen.connection = id;
      seen.at = Steady::now();
      const std::size_t index = requests_.size();
      requests_.push_back(std::move(seen));

      Reply reply;
      if (!script_.empty()) {
        reply = std::move(script_.front());
        script_.pop_front();
      } else if (respond_) {
        reply = respond_(requests_[index]);
      }
      if (reply.hang_up) break;
      if (!reply.answer) continue;  // the client gives up and closes the connection
      if (reply.delay > 0ms) {
        asio::steady_timer delay(io_, reply.delay);
        co_await delay.async_wait(nothrow);
      }
      while (requests_.size() < reply.answer_once_seen) {
        asio::steady_timer poll(io_, 5ms);
        co_await poll.async_wait(nothrow);
      }
      http::response<http::string_body> response;
      response.version(11);
      response.result(static_cast<unsigned>(reply.status));
      response.set(http::field::content_type, "application/json");
      for (const auto& [name, value] : reply.headers) response.set(name, value);
      response.keep_alive(!reply.close_after);
      response.body() = reply.body;
      response.prepare_payload();
      requests_[index].answered = reply.status;
      auto [write_error, written] = co_await http::async_write(*socket, response, nothrow);
      if (write_error || reply.close_after || reply.drop_after) break;
      if (reply.stall_after) {
        co_await stall_.async_wait(nothrow);  // until stop()
        break;
      }
    }
    beast::error_code ignored;
    socket->shutdown(tcp::socket::shutdown_both, ignored);
    socket->close(ignored);
    ++closed_;
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer stall_;  // stalled sessions wait on it; stop() cancels it
  std::deque<Reply> script_;
  std::function<Reply(const Request&)> respond_;
  std::vector<Request> requests_;
  std::vector<std::weak_ptr<tcp::socket>> sockets_;
  int accepted_ = 0;
  int closed_ = 0;
  std::exception_ptr failure_;
};

// ---- The writer under test, its queue, clock, dead letters and logs
// ------------------------------

struct DeadLetterCall {
  std::string body;
  std::size_t points = 0;
  std::uint64_t last_seq = 0;
  std::string error;
};

TimeMs steady_ms() {
  return std::chrono::duration_cast<milliseconds>(Steady::now().time_since_epoch()).count();
}

// "m,n=<k> v=<k>i <k>\n": point k, unique so bodies show exactly which points went out.
std::string line(std::uint64_t k) {
  const auto n = std::to_string(k);
  return "m,n=" + n + " v=" + n + "i " + n + "\n";
}
std::string lines(std::uint64_t first, std::uint64_t last) {
  std::string out;
  for (auto k = first; k <= last; ++k) out += line(k);
  return out;
}

// The point numbers k of the lines in `body`, in order.
std::vector<std::uint64_t> point_numbers(const std::string& body) {
  std::vector<std::uint64_t> out;
  for (std::size_t at = 0; at < body.size();) {
    const auto end = body.find('\n', at);
    const std::string text =
        body.substr(at, end == std::string::npos ? std::string::npos : end - at);
    const auto space = text.find(' ');
    if (text.rfind("m,n=", 0) == 0 && space != std::string::npos)
      out.push_back(std::stoull(text.substr(4, space - 4)));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

struct Harness {
  asio::io_context io;
  ScriptedServer server{io};
  tumbled::config::InfluxSinkConfig settings = defaults();
  PointQueue queue;
  std::optional<TimeMs> fake_now = 1'000'000;  // nullopt: a real (steady) clock
  std::deque<bool> dead_letter_results;        // what the callback answers; true once empty
  std::vector<DeadLetterCall> dead_letters;
  std::vector<milliseconds> pauses;  // every delay the writer waited before its next attempt
  std::ostringstream log_text;
  std::shared_ptr<spdlog::logger> log;
  std::optional<BatchWriter> writer;
  bool run_done = false;
  std::exception_ptr run_error;
  bool finished = false;

  static tumbled::config::InfluxSinkConfig defaults() {
    tumbled::config::InfluxSinkConfig s;
    s.database = "telemetry";
    s.batch_size = 2;
    // Below any batch_size, which the plan then takes instead: batches of batch_size, even with a
    // backlog, unless a test sets a larger max_batch_size.
    s.max_batch_size = 1;
    s.batch_interval = 60s;  // with the fake clock standing still, only size or flushing sends
    s.request_timeout = 2s;
    s.retry.initial_backoff = 20ms;
    s.retry.max_backoff = 200ms;
    s.retry.max_retries = -1;
    return s;
  }

  Harness() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(log_text);
    sink->set_pattern("%l %v");
    log = std::make_shared<spdlog::logger>("influx-test", sink);
    log->set_level(spdlog::level::trace);
  }

  ~Harness() {
    if (!finished) shutdown();
  }

  TimeMs now() const { return fake_now ? *fake_now : steady_ms(); }

  // Starts the writer with `settings` as they are now.
  void start() {
    settings.scheme = "http";
    settings.endpoint = {"127.0.0.1", server.port()};
    writer.emplace(
        io.get_executor(), settings, queue,
        [this](const PointQueue::Batch& batch, const std::string& error) {
          dead_letters.push_back({batch.body, batch.points, batch.last_seq, error});
          if (dead_letter_results.empty()) return true;
          const bool result = dead_letter_results.front();
          dead_letter_results.pop_front();
          return result;
        },
        log, [this] { return now(); });
    writer->on_pause([this](milliseconds delay) { pauses.push_back(delay); });
    asio::co_spawn(io, writer->run(), [this](std::exception_ptr e) {
      run_error = e;
      run_done = true;
    });
  }

  // Pushes n points (numbered on from the last); returns the last seq.
  std::uint64_t push(std::size_t n) {
    std::uint64_t seq = 0;
    for (std::size_t i = 0; i < n; ++i) seq = queue.push(line(queue.next_seq()), now());
    return seq;
  }
  // Pushes n points, checkpoints them (as the pipeline does) and wakes the writer.
  std::uint64_t push_durable(std::size_t n) {
    const auto seq = push(n);
    queue.mark_durable_through(seq);
    writer->wake();
    return seq;
  }

  // Runs the io_context until done() holds; false only after the hang guard, i.e. never in a test
  // that passes.
  template <class Predicate>
  bool run_until(Predicate&& done, milliseconds timeout = tumbled::test::hang_guard()) {
    const auto deadline = Steady::now() + timeout;
    while (!done()) {
      if (Steady::now() >= deadline) return false;
      if (io.stopped()) io.restart();
      io.run_one_for(5ms);
    }
    return true;
  }
  void run_for(milliseconds duration) {
    run_until([] { return false; }, duration);
  }
  bool wait_requests(std::size_t n) {
    return run_until([&] { return server.requests().size() >= n; });
  }

  const std::vector<Request>& requests() const { return server.requests(); }
  std::vector<std::string> bodies() const {
    std::vector<std::string> out;
    for (const auto& r : requests()) out.push_back(r.body);
    return out;
  }
  milliseconds gap(std::size_t from, std::size_t to) const {
    return std::chrono::duration_cast<milliseconds>(requests().at(to).at - requests().at(from).at);
  }
  // Every point in a body the server answered with 2xx, in the order the requests came.
  std::vector<std::uint64_t> accepted_points() const {
    std::vector<std::uint64_t> out;
    for (const auto& r : requests()) {
      if (r.answered < 200 || r.answered >= 300) continue;
      for (auto k : point_numbers(r.body)) out.push_back(k);
    }
    return out;
  }
  // Each accepted point once, in the order it was first accepted.
  std::vector<std::uint64_t> first_accepted() const {
    std::vector<std::uint64_t> out;
    for (auto k : accepted_points()) {
      if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
    }
    return out;
  }

  void shutdown() {
    finished = true;
    if (writer) writer->stop();
    server.stop();
    run_until([&] { return !writer || run_done; });
    io.run_for(50ms);  // let the server's sessions see their sockets close
  }

  // Stops everything and checks that the writer and the server ended cleanly.
  void finish() {
    shutdown();
    CHECK(run_done);
    if (run_error) {
      try {
        std::rethrow_exception(run_error);
      } catch (const std::exception& e) {
        FAIL("BatchWriter::run() threw: " << e.what());
      }
    }
    if (server.failure()) {
      try {
        std::rethrow_exception(server.failure());
      } catch (const std::exception& e) {
        FAIL("the test server threw: " << e.what());
      }
    }
  }
};

void check_counters(const SinkCounters& c, std::uint64_t batches_written,
                    std::uint64_t points_written, std::uint64_t failed_attempts,
                    std::uint64_t batches_dead_lettered, std::uint64_t points_dead_lettered) {
  CHECK(c.batches_written == batches_written);
  CHECK(c.points_written == points_written);
  CHECK(c.failed_attempts == failed_attempts);
  CHECK(c.batches_dead_lettered == batches_dead_lettered);
  CHECK(c.points_dead_lettered == points_dead_lettered);
}

}  // namespace

// ---- Batching ----------------------------------------------------------------------------------

TEST_CASE("BatchWriter sends a batch as soon as batch_size points are durable", "[writer]") {
  Harness h;
  h.settings.batch_size = 3;
  h.start();

  h.push_durable(2);
  h.run_for(200ms);
  CHECK(h.requests().empty());  // 2 < batch_size and the interval is a minute away

  h.push_durable(1);
  REQUIRE(h.wait_requests(1));
  CHECK(h.requests()[0].body == lines(1, 3));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));

  // Seven more: two full batches go out at once, the seventh waits.
  h.push_durable(7);
  REQUIRE(h.wait_requests(3));
  h.run_for(200ms);
  CHECK(h.bodies() == std::vector<std::string>{lines(1, 3), lines(4, 6), lines(7, 9)});
  CHECK(h.queue.size() == 1);
  check_counters(h.writer->counters(), 3, 9, 0, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter sends a backlog in batches of up to max_batch_size", "[writer]") {
  Harness h;
  h.settings.batch_size = 3;
  h.settings.max_batch_size = 5;
  h.start();

  // Twelve at once: more than batch_size wait, so batches of max_batch_size; the last two wait
  // for a third.
  h.push_durable(12);
  REQUIRE(h.wait_requests(2));
  h.run_for(200ms);
  CHECK(h.bodies() == std::vector<std::string>{lines(1, 5), lines(6, 10)});
  CHECK(h.queue.size() == 2);
  h.push_durable(1);
  REQUIRE(h.wait_requests(3));
  CHECK(h.requests()[2].body == lines(11, 13));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  for (const auto& request : h.requests()) CHECK(request.connection == 0);
  check_counters(h.writer->counters(), 3, 13, 0, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter sends a partial batch once batch_interval has passed", "[writer]") {
  Harness h;
  h.fake_now.reset();  // real clock: the writer's own timer must wake it
  h.settings.batch_size = 100;
  h.settings.batch_interval = 150ms;
  h.start();

  const auto pushed = Steady::now();
  h.push_durable(2);
  REQUIRE(h.wait_requests(1));
  const auto waited = std::chrono::duration_cast<milliseconds>(h.requests()[0].at - pushed);
  CHECK(waited >= 145ms);  // ms rounding of the clock; steady timers never fire early
  CHECK(h.requests()[0].body == lines(1, 2));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));

  // The next point waits its own interval, measured from when it was queued.
  h.run_for(100ms);
  const auto second = Steady::now();
  h.push_durable(1);
  REQUIRE(h.wait_requests(2));
  CHECK(h.requests()[1].at - second >= 145ms);
  CHECK(h.requests()[1].body == lines(3, 3));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  check_counters(h.writer->counters(), 2, 3, 0, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter decides on the interval with the injected clock", "[writer]") {
  Harness h;
  h.settings.batch_size = 100;
  h.settings.batch_interval = 50ms;
  h.fake_now = 1'000;
  h.start();

  h.push_durable(1);  // queued at 1000, due at 1050 by the fake clock
  h.run_for(250ms);   // real time passes, the fake clock does not: the timer re-arms
  CHECK(h.requests().empty());
  h.fake_now = 1'049;
  h.run_for(150ms);
  CHECK(h.requests().empty());
  h.fake_now = 1'050;  // no wake(): the writer's own timer notices within ~50ms
  REQUIRE(h.wait_requests(1));
  CHECK(h.requests()[0].body == lines(1, 1));
  check_counters(h.writer->counters(), 0, 0, 0, 0, 0);  // the 204 may still be on its way
  REQUIRE(h.run_until([&] { return h.writer->counters().batches_written == 1; }));
  check_counters(h.writer->counters(), 1, 1, 0, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter sends points only once they are durable", "[writer]") {
  Harness h;
  h.settings.batch_size = 2;
  h.settings.batch_interval = 100ms;
  h.start();

  h.push(3);
  h.writer->wake();
  *h.fake_now += 10'000;  // long overdue, and yet not durable
  h.run_for(300ms);
  CHECK(h.requests().empty());
  CHECK(h.queue.sendable() == 0);

  h.queue.mark_durable_through(2);
  h.writer->wake();
  REQUIRE(h.wait_requests(1));
  CHECK(h.requests()[0].body == lines(1, 2));
  h.run_for(300ms);  // point 3 is overdue but still not durable
  CHECK(h.requests().size() == 1);
  CHECK(h.queue.size() == 1);

  h.queue.mark_durable_through(3);
  h.writer->wake();
  REQUIRE(h.wait_requests(2));
  CHECK(h.requests()[1].body == lines(3, 3));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  check_counters(h.writer->counters(), 2, 3, 0, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter::flush_all sends every durable point at once", "[writer]") {
  Harness h;
  h.settings.batch_size = 4;
  h.start();

  h.push_durable(3);
  h.push(1);  // not durable: stays behind even when flushing
  h.run_for(200ms);
  CHECK(h.requests().empty());

  h.writer->flush_all();
  REQUIRE(h.wait_requests(1));
  h.run_for(200ms);
  CHECK(h.bodies() == std::vector<std::string>{lines(1, 3)});
  CHECK(h.queue.size() == 1);

  // While flushing, a single durable point goes out on its own.
  h.queue.mark_durable_through(4);
  h.writer->wake();
  REQUIRE(h.wait_requests(2));
  CHECK(h.requests()[1].body == lines(4, 4));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  check_counters(h.writer->counters(), 2, 4, 0, 0, 0);
  h.finish();
}

// ---- The request -------------------------------------------------------------------------------

TEST_CASE("BatchWriter posts to /write with the database, retention policy and credentials",
          "[writer]") {
  Harness h;
  h.settings.batch_size = 1;
  std::string target;
  std::string authorization = "(none)";
  std::string secret;

  SECTION("no credentials, default retention policy") {
    target = "/write?db=telemetry&precision=ms";
  }
  SECTION("username, password and retention policy") {
    h.settings.database = "my db";
    h.settings.retention_policy = "one_week";
    h.settings.username = "writer";
    h.settings.password = secret = "s3cr3t/pw&x";
    target = "/write?db=my%20db&rp=one_week&precision=ms";
    authorization = "Basic d3JpdGVyOnMzY3IzdC9wdyZ4";  // base64("writer:s3cr3t/pw&x")
  }
  SECTION("username with an empty password") {
    h.settings.username = "alice";
    target = "/write?db=telemetry&precision=ms";
    authorization = "Basic YWxpY2U6";  // base64("alice:")
  }
  SECTION("a password without a username means no authentication") {
    h.settings.password = secret = "s3cr3t";
    target = "/write?db=telemetry&precision=ms";
  }
  SECTION("under a path prefix, with odd characters in names") {
    h.settings.path_prefix = "/influx";
    h.settings.database = "a&b=c";
    h.settings.retention_policy = "r/p?";
    target = "/influx/write?db=a%26b%3Dc&rp=r%2Fp%3F&precision=ms";
  }

  h.server.script({status(500, "{\"error\":\"boom\"}\n")});  // so that something is logged too
  h.start();
  h.push_durable(1);
  REQUIRE(h.wait_requests(2));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));

  for (const auto& request : h.requests()) {
    CHECK(request.method == "POST");
    CHECK(request.target == target);
    CHECK(request.header("authorization").value_or("(none)") == authorization);
    CHECK(request.header("content-type") == "text/plain; charset=utf-8");
    CHECK(request.header("host") == "127.0.0.1:" + std::to_string(h.server.port()));
    CHECK(request.header("content-length") == std::to_string(line(1).size()));
    CHECK(request.body == line(1));
    if (!secret.empty()) CHECK(request.target.find(secret) == std::string::npos);
  }
  if (!secret.empty()) CHECK(h.log_text.str().find(secret) == std::string::npos);
  CHECK(tumbled::sink::write_target(h.settings) == target);
  check_counters(h.writer->counters(), 1, 1, 1, 0, 0);
  h.finish();
}

// ---- Retries -----------------------------------------------------------------------------------

TEST_CASE("BatchWriter retries 5xx with the same body, keeping order, backing off", "[writer]") {
  Harness h;
  h.settings.batch_size = 2;
  h.settings.retry.initial_backoff = 40ms;
  h.settings.retry.max_backoff = 1s;
  h.server.script({status(500, "{\"error\":\"internal\"}\n"), status(503), status(204)});
  h.start();

  h.push_durable(4);
  REQUIRE(h.wait_requests(2));
  CHECK(h.writer->in_retry_episode());  // the 500 counted, the 503 not answered yet
  REQUIRE(h.wait_requests(4));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));

  CHECK(h.bodies() == std::vector<std::string>{lines(1, 2), lines(1, 2), lines(1, 2), lines(3, 4)});
  // Delays are jittered into [d/2, d].
  CHECK(h.gap(0, 1) >= 20ms);  // initial_backoff (40ms), jittered
  CHECK(h.gap(1, 2) >= 40ms);  // doubled (80ms), jittered
  REQUIRE(h.pauses.size() == 2);
  CHECK(h.pauses[0] >= 20ms);
  CHECK(h.pauses[0] <= 40ms);
  CHECK(h.pauses[1] >= 40ms);
  CHECK(h.pauses[1] <= 80ms);
  CHECK_FALSE(h.writer->in_retry_episode());
  CHECK(h.dead_letters.empty());
  check_counters(h.writer->counters(), 2, 4, 2, 0, 0);

  // Logged when the episode starts and when it recovers, not on every attempt.
  const std::string log = h.log_text.str();
  INFO(log);
  CHECK(count_of(log, "retrying with backoff") == 1);
  CHECK(count_of(log, "HTTP 500: {\"error\":\"internal\"}") == 1);
  CHECK(count_of(log, "recovered after 2 failed attempts") == 1);

  // A later failure starts from initial_backoff again.
  h.server.script({status(502)});
  h.push_durable(2);
  REQUIRE(h.wait_requests(6));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  CHECK(h.gap(4, 5) >= 20ms);
  REQUIRE(h.pauses.size() == 3);
  CHECK(h.pauses[2] >= 20ms);
  CHECK(h.pauses[2] <= 40ms);  // not the doubled delay of the episode before
  CHECK(h.requests()[5].body == lines(5, 6));
  check_counters(h.writer->counters(), 3, 6, 3, 0, 0);
  CHECK(h.writer->counters().batches_split == 0);
  h.finish();
}

TEST_CASE("BatchWriter retries 429 and 408", "[writer]") {
  Harness h;
  h.server.script({status(429, "{\"error\":\"too many requests\"}"), status(408), status(204)});
  h.start();
  h.push_durable(2);
  REQUIRE(h.wait_requests(3));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  CHECK(h.bodies() == std::vector<std::string>(3, lines(1, 2)));
  CHECK(h.dead_letters.empty());
  check_counters(h.writer->counters(), 1, 2, 2, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter jitters its backoff delays into [d/2, d]", "[writer]") {
  Harness h;
  h.settings.batch_size = 2;
  h.settings.retry.initial_backoff = 100ms;
  h.settings.retry.max_backoff = 200ms;
  constexpr std::size_t kFailures = 8;
  h.server.script(std::vector<Reply>(kFailures, status(500)));
  h.start();

  h.push_durable(2);
  REQUIRE(h.wait_requests(kFailures + 1));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));

  // The un-jittered delays: 100ms, then doubled and capped at 200ms.
  REQUIRE(h.pauses.size() == kFailures);
  bool some_below_full = false;
  for (std::size_t i = 0; i < kFailures; ++i) {
    const milliseconds d = i == 0 ? 100ms : 200ms;
    const milliseconds gap = h.gap(i, i + 1);
    INFO("attempt " << i + 1 << ": un-jittered delay " << d.count() << "ms, chose "
                    << h.pauses[i].count() << "ms, waited " << gap.count() << "ms");
    CHECK(h.pauses[i] >= d / 2);
    CHECK(h.pauses[i] <= d);
    CHECK(gap >= h.pauses[i] - 2ms);  // a timer never fires early; 2ms for rounding
    if (i > 0 && h.pauses[i] < d - 5ms) some_below_full = true;
  }
  // Seven delays all within 5ms of the full 200ms would mean no jitter (with it: p < 1e-8).
  CHECK(some_below_full);
  check_counters(h.writer->counters(), 1, 2, kFailures, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter waits at least as long as Retry-After asks", "[writer]") {
  const int code = GENERATE(503, 429);
  INFO("HTTP " << code);
  Harness h;
  h.settings.batch_size = 2;
  h.settings.retry.initial_backoff = 10ms;  // far shorter than the server asks for
  h.settings.retry.max_backoff = 50ms;
  Reply busy = status(code, "{\"error\":\"busy\"}");
  busy.headers = {{"Retry-After", "1"}};
  h.server.script({busy});
  h.start();

  h.push_durable(2);
  REQUIRE(h.wait_requests(2));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  CHECK(h.bodies() == std::vector<std::string>(2, lines(1, 2)));
  CHECK(h.gap(0, 1) >= 990ms);  // 1 s; a timer never fires early, 10ms for rounding
  CHECK(h.pauses == std::vector<milliseconds>{1s});  // and no longer than asked
  check_counters(h.writer->counters(), 1, 2, 1, 0, 0);

  // It applies to that retry only: the next batch goes out at once.
  h.push_durable(2);
  REQUIRE(h.wait_requests(3));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  CHECK(h.pauses.size() == 1);
  check_counters(h.writer->counters(), 2, 4, 1, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter keeps its own backoff when Retry-After asks for less", "[writer]") {
  Harness h;
  h.settings.retry.initial_backoff = 400ms;
  h.settings.retry.max_backoff = 400ms;
  Reply busy = status(503);
  busy.headers = {{"Retry-After", "0"}};
  h.server.script({busy});
  h.start();

  h.push_durable(2);
  REQUIRE(h.wait_requests(2));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  CHECK(h.gap(0, 1) >= 198ms);  // initial_backoff, jittered down to half at most
  REQUIRE(h.pauses.size() == 1);
  CHECK(h.pauses[0] >= 200ms);
  CHECK(h.pauses[0] <= 400ms);
  check_counters(h.writer->counters(), 1, 2, 1, 0, 0);
  h.finish();
}

// ---- Rejections, splits and dead letters -------------------------------------------------------

TEST_CASE("BatchWriter dead-letters a rejected batch once and moves on", "[writer]") {
  const auto [code, influx_error, hint] = GENERATE(table<int, std::string, std::string>({
      {401, "authorization failed", "check sink.influxdb.username and password"},
      {403, "forbidden", "check sink.influxdb.username and password"},
      {404, "database not found: \\\"telemetry\\\"", "CREATE DATABASE"},
      {422, "unprocessable entity", "will not accept this batch as it is"},
  }));
  INFO("HTTP " << code);
  Harness h;
  h.settings.batch_size = 2;
  h.settings.retry.initial_backoff = 10s;  // the writer must not wait at all (h.pauses)
  h.settings.retry.max_backoff = 10s;
  h.server.script({status(code, "{\"error\":\"" + influx_error + "\"}\n")});
  h.start();

  h.push_durable(4);
  REQUIRE(h.wait_requests(2));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.run_for(100ms);

  // The whole batch at once: these statuses are not split.
  CHECK(h.bodies() == std::vector<std::string>{lines(1, 2), lines(3, 4)});
  REQUIRE(h.dead_letters.size() == 1);
  const auto& letter = h.dead_letters[0];
  CHECK(letter.body == lines(1, 2));
  CHECK(letter.points == 2);
  CHECK(letter.last_seq == 2);
  INFO(letter.error);
  CHECK(letter.error.find("HTTP " + std::to_string(code)) != std::string::npos);
  CHECK(letter.error.find(influx_error) != std::string::npos);
  CHECK(letter.error.find(hint) != std::string::npos);
  CHECK(letter.error.find('\n') == std::string::npos);  // trailing newline of the body trimmed
  CHECK(h.pauses.empty());
  CHECK_FALSE(h.writer->in_retry_episode());
  check_counters(h.writer->counters(), 1, 2, 1, 1, 2);
  CHECK(h.writer->counters().batches_split == 0);
  h.finish();
}

TEST_CASE("BatchWriter keeps a rejected batch when the dead letter cannot be stored", "[writer]") {
  Harness h;
  h.settings.batch_size = 2;
  h.settings.retry.initial_backoff = 10ms;
  h.settings.retry.max_backoff = 150ms;
  h.server.script({status(401, "{\"error\":\"bad\"}"), status(401, "{\"error\":\"bad\"}")});
  h.dead_letter_results = {false, true};
  h.start();

  h.push_durable(4);
  REQUIRE(h.wait_requests(1));
  REQUIRE(h.run_until([&] { return h.dead_letters.size() == 1; }));
  CHECK(h.queue.size() == 4);  // the batch stayed

  REQUIRE(h.wait_requests(3));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  CHECK(h.bodies() == std::vector<std::string>{lines(1, 2), lines(1, 2), lines(3, 4)});
  CHECK(h.gap(0, 1) >= 150ms);  // waited max_backoff before trying again
  CHECK(h.pauses == std::vector<milliseconds>{150ms});
  REQUIRE(h.dead_letters.size() == 2);
  CHECK(h.dead_letters[0].body == lines(1, 2));
  CHECK(h.dead_letters[1].body == lines(1, 2));
  CHECK(h.log_text.str().find("could not be stored as a dead letter") != std::string::npos);
  check_counters(h.writer->counters(), 1, 2, 2, 1, 2);
  h.finish();
}

TEST_CASE("BatchWriter halves a batch refused with 400 to isolate the poison point", "[writer]") {
  Harness h;
  h.settings.batch_size = 8;
  h.settings.retry.initial_backoff = 10s;  // the pieces go out at once, without a pause
  h.settings.retry.max_backoff = 10s;
  const std::string poison = line(6);
  h.server.respond([&](const Request& r) {
    return r.body.find(poison) != std::string::npos
               ? status(400, "{\"error\":\"partial write: field type conflict\"}\n")
               : status(204);
  });
  h.start();

  h.push_durable(8);
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.run_for(100ms);
  INFO(h.log_text.str());

  // Halved while refused: 8 -> 4 + 4, the refused 4 -> 2 + 2 ..., the pieces in order.
  CHECK(h.bodies() == std::vector<std::string>{lines(1, 8), lines(1, 4), lines(5, 8), lines(5, 6),
                                               lines(5, 5), lines(6, 6), lines(7, 7), lines(8, 8)});
  CHECK(h.pauses.empty());
  // Every good point was written, first in order; the poison point never was.
  CHECK(h.first_accepted() == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 7, 8});
  // Exactly one dead letter, with the poison point alone.
  REQUIRE(h.dead_letters.size() == 1);
  const auto& letter = h.dead_letters[0];
  CHECK(letter.body == poison);
  CHECK(letter.points == 1);
  CHECK(letter.last_seq == 6);
  CHECK(letter.error.find("HTTP 400") != std::string::npos);
  CHECK(letter.error.find("field type conflict") != std::string::npos);
  CHECK(letter.error.find("could not store these points") != std::string::npos);
  CHECK(h.queue.empty());
  CHECK_FALSE(h.writer->in_retry_episode());
  check_counters(h.writer->counters(), 4, 7, 4, 1, 1);
  CHECK(h.writer->counters().batches_split == 3);            // 8 -> 4, 4 -> 2, 2 -> 1
  CHECK(count_of(h.log_text.str(), "smaller pieces") == 1);  // once per refused batch
  CHECK(count_of(h.log_text.str(), "back to batches of 8") == 1);

  // Afterwards batches are full-sized again: 7 points wait, the 8th sends all of them.
  h.push_durable(7);
  h.run_for(200ms);
  CHECK(h.requests().size() == 8);
  h.push_durable(1);
  REQUIRE(h.wait_requests(9));
  CHECK(h.requests()[8].body == lines(9, 16));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  check_counters(h.writer->counters(), 5, 15, 4, 1, 1);
  CHECK(h.writer->counters().batches_split == 3);
  h.finish();
}

TEST_CASE("BatchWriter halves a batch refused with 413 until the pieces fit", "[writer]") {
  Harness h;
  h.settings.batch_size = 8;
  h.settings.retry.initial_backoff = 10s;
  h.settings.retry.max_backoff = 10s;
  std::size_t max_body = 0;
  h.server.respond([&](const Request& r) {
    return r.body.size() > max_body ? status(413, "{\"error\":\"Request Entity Too Large\"}")
                                    : status(204);
  });

  SECTION("pieces of two points fit") {
    max_body = 2 * line(1).size() + 4;  // two points fit, four do not
    h.start();
    h.push_durable(8);
    REQUIRE(h.run_until([&] { return h.queue.empty(); }));
    h.run_for(100ms);

    CHECK(h.bodies() == std::vector<std::string>{lines(1, 8), lines(1, 4), lines(1, 2), lines(3, 4),
                                                 lines(5, 6), lines(7, 8)});
    CHECK(h.accepted_points() == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8});
    CHECK(h.dead_letters.empty());
    CHECK(h.pauses.empty());
    check_counters(h.writer->counters(), 4, 8, 2, 0, 0);
    CHECK(h.writer->counters().batches_split == 2);
  }
  SECTION("not even one point fits") {
    max_body = 4;
    h.start();
    h.push_durable(8);
    REQUIRE(h.run_until([&] { return h.queue.empty(); }));
    h.run_for(100ms);

    // Halved down to single points, which are then refused one by one, in order.
    CHECK(h.bodies() == std::vector<std::string>{lines(1, 8), lines(1, 4), lines(1, 2), line(1),
                                                 line(2), line(3), line(4), line(5), line(6),
                                                 line(7), line(8)});
    REQUIRE(h.dead_letters.size() == 8);
    for (std::uint64_t k = 1; k <= 8; ++k) {
      const auto& letter = h.dead_letters[k - 1];
      CHECK(letter.body == line(k));
      CHECK(letter.points == 1);
      CHECK(letter.last_seq == k);
      CHECK(letter.error.find("HTTP 413") != std::string::npos);
      CHECK(letter.error.find("max-body-size") != std::string::npos);
    }
    CHECK(h.accepted_points().empty());
    CHECK(h.pauses.empty());
    // 3 halvings (8 -> 4 -> 2 -> 1), 8 single points refused.
    CHECK(h.writer->counters().batches_split == 3);
    check_counters(h.writer->counters(), 0, 0, 11, 8, 8);
  }

  // The split is over: the next batch is full-sized and, fitting now, written whole.
  max_body = 1000;
  const auto before = h.requests().size();
  h.push_durable(8);
  REQUIRE(h.wait_requests(before + 1));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.run_for(50ms);
  CHECK(h.requests().size() == before + 1);
  CHECK(h.requests().back().body == lines(9, 16));
  h.finish();
}

TEST_CASE("BatchWriter dead-letters a single point refused with 400 alone", "[writer]") {
  Harness h;
  h.settings.retry.initial_backoff = 10s;  // no backoff for a refused point
  h.settings.retry.max_backoff = 10s;
  h.server.respond([](const Request& r) {
    return r.body.find(line(1)) != std::string::npos
               ? status(400, "{\"error\":\"unable to parse 'm,n=1'\"}")
               : status(204);
  });

  std::vector<std::string> expected_bodies;
  std::uint64_t splits = 0;
  SECTION("sent alone") {
    h.settings.batch_size = 1;
    expected_bodies = {lines(1, 1), lines(2, 2)};
  }
  SECTION("in a batch with a good point") {
    h.settings.batch_size = 2;
    expected_bodies = {lines(1, 2), lines(1, 1), lines(2, 2)};
    splits = 1;
  }
  h.start();

  h.push_durable(2);
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.run_for(100ms);
  CHECK(h.bodies() == expected_bodies);
  REQUIRE(h.dead_letters.size() == 1);
  CHECK(h.dead_letters[0].body == line(1));
  CHECK(h.dead_letters[0].points == 1);
  CHECK(h.dead_letters[0].last_seq == 1);
  CHECK(h.dead_letters[0].error.find("HTTP 400: {\"error\":\"unable to parse 'm,n=1'\"}") !=
        std::string::npos);
  CHECK(h.first_accepted() == std::vector<std::uint64_t>{2});
  CHECK(h.pauses.empty());
  CHECK(h.writer->counters().batches_split == splits);
  check_counters(h.writer->counters(), 1, 1, 1 + splits, 1, 1);
  CHECK_FALSE(h.writer->in_retry_episode());
  h.finish();
}

TEST_CASE("BatchWriter returns to full batches when a piece of a split batch runs out of retries",
          "[writer]") {
  Harness h;
  h.settings.batch_size = 2;
  h.settings.retry.initial_backoff = 10ms;
  h.settings.retry.max_backoff = 10ms;
  h.settings.retry.max_retries = 0;  // the first failure gives up
  h.server.script({status(400), status(204), status(500)});
  h.start();

  h.push_durable(2);
  REQUIRE(h.run_until([&] { return h.queue.empty() && h.dead_letters.size() == 1; }));
  CHECK(h.bodies() == std::vector<std::string>{lines(1, 2), lines(1, 1), lines(2, 2)});
  CHECK(h.dead_letters[0].body == line(2));
  CHECK(h.dead_letters[0].error.find("gave up after 1 attempts") != std::string::npos);

  // The refused batch's last point is dead-lettered: the split is over.
  h.push_durable(1);
  h.run_for(200ms);
  CHECK(h.requests().size() == 3);  // one point waits for a full batch
  h.push_durable(1);
  REQUIRE(h.wait_requests(4));
  CHECK(h.requests()[3].body == lines(3, 4));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  check_counters(h.writer->counters(), 2, 3, 2, 1, 1);
  CHECK(h.writer->counters().batches_split == 1);
  h.finish();
}

TEST_CASE("BatchWriter logs dead letters at most once per 30 s of its clock", "[writer]") {
  Harness h;
  h.settings.batch_size = 1;
  h.settings.retry.initial_backoff = 10s;
  h.settings.retry.max_backoff = 10s;
  h.server.respond([](const Request&) { return status(403, "{\"error\":\"forbidden\"}"); });
  h.start();

  const auto logged = [&] { return count_of(h.log_text.str(), "for good"); };
  h.push_durable(3);
  REQUIRE(h.run_until([&] { return h.dead_letters.size() == 3; }));
  CHECK(logged() == 1);

  *h.fake_now += 29'999;
  h.push_durable(1);
  REQUIRE(h.run_until([&] { return h.dead_letters.size() == 4; }));
  CHECK(logged() == 1);

  *h.fake_now += 1;  // 30 s after the line before
  h.push_durable(1);
  REQUIRE(h.run_until([&] { return h.dead_letters.size() == 5; }));
  CHECK(logged() == 2);
  INFO(h.log_text.str());
  CHECK(count_of(h.log_text.str(), "5 points dead-lettered so far") == 1);
  CHECK(h.queue.empty());
  check_counters(h.writer->counters(), 0, 0, 5, 5, 5);
  h.finish();
}

TEST_CASE("BatchWriter gives up after max_retries retries", "[writer]") {
  Harness h;
  h.settings.batch_size = 2;
  h.settings.retry.initial_backoff = 10ms;
  h.settings.retry.max_backoff = 40ms;
  h.settings.retry.max_retries = 2;
  h.server.script({status(500), status(500), status(500, "{\"error\":\"still broken\"}"),
                   status(204), status(500), status(204)});
  h.start();

  h.push_durable(6);
  REQUIRE(h.wait_requests(6));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.run_for(100ms);

  // 3 attempts for the first batch, then the next ones; the count starts over after giving up.
  CHECK(h.bodies() == std::vector<std::string>{lines(1, 2), lines(1, 2), lines(1, 2), lines(3, 4),
                                               lines(5, 6), lines(5, 6)});
  REQUIRE(h.dead_letters.size() == 1);
  CHECK(h.dead_letters[0].body == lines(1, 2));
  INFO(h.dead_letters[0].error);
  CHECK(h.dead_letters[0].error.find("HTTP 500: {\"error\":\"still broken\"}") !=
        std::string::npos);
  CHECK(h.dead_letters[0].error.find("gave up after 3 attempts") != std::string::npos);
  check_counters(h.writer->counters(), 2, 4, 4, 1, 2);
  h.finish();
}

// ---- Timeouts and connections ------------------------------------------------------------------

TEST_CASE("BatchWriter retries a request that gets no answer within request_timeout", "[writer]") {
  Harness h;
  // Long enough for any machine to send the request before it passes (the server must see it).
  h.settings.request_timeout = 1s;
  h.settings.retry.initial_backoff = 20ms;
  Reply silent;
  silent.answer = false;
  Reply late = status(204);
  late.answer_once_seen = 2;  // answers, but only once the client has given up and sent it again

  SECTION("never answers") {
    h.server.script({silent, status(204)});
  }
  SECTION("answers too late") {
    h.server.script({late, status(204)});
  }

  h.start();
  const auto pushed = Steady::now();  // before the client starts its request_timeout
  h.push_durable(2);
  REQUIRE(h.wait_requests(2));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  // The first connection's session ends once the client has closed it: a late answer, if any, is
  // out by then and must change nothing.
  REQUIRE(h.run_until([&] { return h.server.closed_connections() >= 1; }));
  h.run_for(50ms);

  CHECK(h.bodies() == std::vector<std::string>{lines(1, 2), lines(1, 2)});
  // request_timeout, counted from the client's send (the server may see it later), then
  // initial_backoff jittered (>= 10ms).
  CHECK(h.requests()[1].at - pushed >= h.settings.request_timeout + 10ms);
  // A connection in an unknown state is never reused.
  CHECK(h.requests()[1].connection != h.requests()[0].connection);
  CHECK(h.server.closed_connections() >= 1);
  CHECK(h.log_text.str().find("no response within request_timeout") != std::string::npos);
  check_counters(h.writer->counters(), 1, 2, 1, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter backs off when a reused connection times out", "[writer]") {
  // The timeout is caused by the server, never by slowness: it never answers, or it stops reading
  // a body larger than what the socket buffers can hold. Only that exchange has a short
  // request_timeout; the others, the retry of a body of several MiB included, get the hang guard.
  // (The writer reads its settings at each request.)
  constexpr milliseconds kTimeout = 1s;  // time enough to send the request the server must see
  Harness h;
  h.settings.batch_size = 1;
  h.settings.request_timeout = tumbled::test::hang_guard();
  h.settings.retry.initial_backoff = 200ms;
  h.settings.retry.max_backoff = 200ms;
  std::string big;
  std::size_t expected_requests = 0;

  SECTION("no answer") {
    Reply silent;
    silent.answer = false;
    h.server.script({status(204), silent});
    big = line(2);
    expected_requests = 3;  // the unanswered one is seen too
  }
  SECTION("the server stops reading while the request is sent") {
    Reply stalling = status(204);
    stalling.stall_after = true;
    h.server.small_receive_buffer();
    h.server.script({stalling});
    // More than the client's send buffer can grow to (tcp_wmem's maximum) plus the server's small
    // receive buffer, so that sending it cannot finish.
    std::size_t send_buffer_max = std::size_t{4} << 20;
    std::ifstream wmem("/proc/sys/net/ipv4/tcp_wmem");
    std::size_t min = 0, initial = 0, max = 0;
    if (wmem >> min >> initial >> max) send_buffer_max = std::max(send_buffer_max, max);
    big = "m,n=2 v=\"" + std::string(send_buffer_max + (std::size_t{1} << 20), 'x') + "\" 2\n";
    expected_requests = 2;
  }
  h.start();

  h.push_durable(1);
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.settings.request_timeout = kTimeout;
  const auto pushed = Steady::now();
  h.queue.push(big, h.now());
  h.queue.mark_durable_through(2);
  h.writer->wake();
  // The attempt that times out, then its backoff: time enough to give the retry all it needs.
  REQUIRE(h.run_until([&] { return h.writer->counters().failed_attempts == 1; }));
  h.settings.request_timeout = tumbled::test::hang_guard();
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));

  // A timeout is no stale connection: it counts and backs off rather than being re-sent at once.
  REQUIRE(h.requests().size() == expected_requests);
  CHECK(h.requests().front().connection == 0);
  CHECK(h.requests().back().connection == 1);
  CHECK(h.requests().back().body == big);
  // The timeout, then at least half the 200 ms backoff.
  CHECK(h.requests().back().at - pushed >= kTimeout + 100ms - 5ms);
  REQUIRE(h.pauses.size() == 1);
  CHECK(h.pauses[0] >= 100ms);
  INFO(h.log_text.str());
  CHECK(h.log_text.str().find("timeout") != std::string::npos);
  CHECK(h.server.connections() == 2);
  check_counters(h.writer->counters(), 2, 2, 1, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter waits for a slow answer within request_timeout", "[writer]") {
  Harness h;
  h.settings.request_timeout = 30s;  // a hundred times the delay: no machine is that slow
  Reply slow = status(204);
  slow.delay = 300ms;
  h.server.script({slow});
  h.start();
  h.push_durable(2);
  REQUIRE(h.wait_requests(1));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.run_for(100ms);
  CHECK(h.requests().size() == 1);
  check_counters(h.writer->counters(), 1, 2, 0, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter sends many batches over one keep-alive connection", "[writer]") {
  Harness h;
  h.settings.batch_size = 1;
  h.server.script({status(204), status(500), status(204), status(400), status(204)});
  h.start();

  // One batch at a time, so each one finds the connection idle.
  for (std::uint64_t k = 1; k <= 4; ++k) {
    h.push_durable(1);
    REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  }
  CHECK(h.requests().size() == 5);
  for (const auto& request : h.requests()) CHECK(request.connection == 0);
  CHECK(h.server.connections() == 1);
  CHECK(h.server.closed_connections() == 0);
  check_counters(h.writer->counters(), 3, 3, 2, 1, 1);  // the 400 on one point: dead-lettered
  h.finish();
}

TEST_CASE("BatchWriter reconnects after the server answers Connection: close", "[writer]") {
  Harness h;
  h.settings.batch_size = 1;
  Reply closing = status(204);
  closing.close_after = true;
  h.server.script({status(204), closing, status(204), status(204)});
  h.start();

  for (std::uint64_t k = 1; k <= 4; ++k) {
    h.push_durable(1);
    REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  }
  REQUIRE(h.requests().size() == 4);
  CHECK(h.requests()[0].connection == 0);
  CHECK(h.requests()[1].connection == 0);
  CHECK(h.requests()[2].connection == 1);
  CHECK(h.requests()[3].connection == 1);
  check_counters(h.writer->counters(), 4, 4, 0, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter delivers after the server closed an idle keep-alive connection",
          "[writer]") {
  Harness h;
  h.settings.batch_size = 1;
  h.settings.retry.initial_backoff = 10s;  // the writer must not wait at all (h.pauses)
  h.settings.retry.max_backoff = 10s;
  Reply dropping = status(204);
  dropping.drop_after = true;  // like a proxy's idle timeout: no "Connection: close" announced
  h.server.script({dropping});
  h.start();

  h.push_durable(1);
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  REQUIRE(h.run_until([&] { return h.server.closed_connections() == 1; }));
  h.run_for(50ms);
  h.push_durable(1);
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  CHECK(h.pauses.empty());

  // Re-sent at once on a new connection: no failed attempt, no backoff, nothing logged. The
  // request sent on the dead connection never reached the server.
  CHECK(h.bodies() == std::vector<std::string>{line(1), line(2)});
  CHECK(h.requests().back().connection == 1);
  CHECK(h.server.connections() == 2);
  CHECK_FALSE(h.writer->in_retry_episode());
  CHECK(h.log_text.str().find("failed") == std::string::npos);
  check_counters(h.writer->counters(), 2, 2, 0, 0, 0);
  h.finish();
}

TEST_CASE("BatchWriter re-sends at once only once after a reused connection fails", "[writer]") {
  Harness h;
  h.settings.batch_size = 1;
  h.settings.retry.initial_backoff = 400ms;
  h.settings.retry.max_backoff = 400ms;
  Reply hang_up;
  hang_up.hang_up = true;  // reads the request, closes without an answer
  h.server.script({status(204), hang_up, hang_up, status(204)});
  h.start();

  h.push_durable(1);
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.push_durable(1);
  REQUIRE(h.wait_requests(4));
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));

  CHECK(h.bodies() == std::vector<std::string>{line(1), line(2), line(2), line(2)});
  CHECK(h.requests()[1].connection == 0);  // the reused connection fails...
  CHECK(h.requests()[2].connection == 1);  // ...so the request goes again at once, once...
  CHECK(h.requests()[3].connection == 2);  // ...and a failure on a new one backs off
  REQUIRE(h.pauses.size() == 1);           // only before the last one
  CHECK(h.pauses[0] >= 200ms);
  CHECK(h.gap(2, 3) >= 198ms);  // initial_backoff, jittered
  check_counters(h.writer->counters(), 2, 2, 1, 0, 0);
  h.finish();
}

// ---- Stopping ----------------------------------------------------------------------------------

TEST_CASE("BatchWriter::stop ends run() promptly and keeps unsent points", "[writer]") {
  Harness h;
  // Only stop() can end the wait within the hang guard.
  h.settings.request_timeout = 1h;
  h.settings.retry.initial_backoff = 1h;
  h.settings.retry.max_backoff = 1h;
  Reply silent;
  silent.answer = false;

  SECTION("during a backoff") {
    h.server.script({status(503)});
  }
  SECTION("while a request is in flight") {
    h.server.script({silent});
  }

  h.start();
  h.push_durable(2);
  REQUIRE(h.wait_requests(1));
  h.run_for(50ms);
  h.writer->stop();
  REQUIRE(h.run_until([&] { return h.run_done; }));
  CHECK(h.queue.size() == 2);
  CHECK(h.requests().size() == 1);
  CHECK(h.writer->counters().batches_written == 0);
  CHECK(h.dead_letters.empty());
  h.finish();
}

TEST_CASE("BatchWriter::stop does not re-send a request in flight on a reused connection",
          "[writer]") {
  Harness h;
  // Only stop() can end the wait within the hang guard.
  h.settings.request_timeout = 1h;
  h.settings.retry.initial_backoff = 1h;
  h.settings.retry.max_backoff = 1h;
  Reply silent;
  silent.answer = false;
  h.server.script({status(204), silent, silent});
  h.start();

  h.push_durable(2);
  REQUIRE(h.run_until([&] { return h.queue.empty(); }));
  h.push_durable(2);  // goes out on the kept-alive connection
  REQUIRE(h.wait_requests(2));
  h.run_for(50ms);
  h.writer->stop();  // cuts the exchange short: no stale connection, nothing to send again
  REQUIRE(h.run_until([&] { return h.run_done; }));
  h.run_for(100ms);
  CHECK(h.requests().size() == 2);
  CHECK(h.server.connections() == 1);
  CHECK(h.queue.size() == 2);
  check_counters(h.writer->counters(), 1, 2, 0, 0, 0);
  h.finish();
}
