#include "source/tcp_source.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <tuple>
#include <vector>

namespace tumbled::source {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunkBytes = 256 * 1024;

std::string peer_of(const tcp::socket& socket) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return "unknown peer";
  return peer.address().to_string() + ":" + std::to_string(peer.port());
}

const char* first_rejection_reason(const LineCounters& before, const LineCounters& after) {
  if (after.not_integer > before.not_integer) return "not an integer";
  if (after.out_of_range > before.out_of_range) return "outside the int64 range";
  return "longer than max_line_bytes";
}

}  // namespace

TcpSource::TcpSource(asio::any_io_executor executor, config::Endpoint listen,
                     std::size_t max_line_bytes, std::size_t max_connections, OnValues on_values,
                     std::shared_ptr<spdlog::logger> log)
    : listen_(std::move(listen)),
      max_line_bytes_(max_line_bytes),
      max_connections_(max_connections),
      on_values_(std::move(on_values)),
      log_(std::move(log)),
      acceptor_(executor),
      resume_signal_(executor),
      read_buffer_(kReadChunkBytes) {
  values_.reserve(kReadChunkBytes / 2);
}

void listen_on(tcp::acceptor& acceptor, const config::Endpoint& address, std::string_view what) {
  boost::system::error_code ec;
  tcp::resolver resolver(acceptor.get_executor());
  const auto results =
      resolver.resolve(address.host, std::to_string(address.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    throw std::runtime_error("cannot resolve " + std::string(what) + " address " +
                             address.to_string() + ": " + ec.message());
  }
  const tcp::endpoint endpoint = *results.begin();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(tcp::acceptor::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + address.to_string() + " (" + std::string(what) +
                             "): " + ec.message());
  }
}

void TcpSource::listen() {
  listen_on(acceptor_, listen_, "source.tcp.listen");
}

config::Endpoint TcpSource::local_endpoint() const {
  const auto endpoint = acceptor_.local_endpoint();
  return {endpoint.address().to_string(), endpoint.port()};
}

asio::awaitable<void> accept_connections(tcp::acceptor& acceptor, const bool& stopped,
                                         std::function<bool()> admit, ServeFn serve,
                                         std::shared_ptr<spdlog::logger> log, std::string what) {
  while (!stopped) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (stopped) break;
    if (ec) {
      // Typically EMFILE: keep serving existing connections and try again shortly.
      log->warn("accept on {} failed: {}; retrying", what, ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (!admit()) {
      // Close at once: the client sees its connection end instead of hanging in the backlog.
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)),
                   [log, what](std::exception_ptr error) {
                     if (!error) return;
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       log->error("connection handler on {} failed: {}", what, e.what());
                     }
                   });
  }
}

asio::awaitable<void> TcpSource::run() {
  const auto admit = [this] {
    if (connections_.size() >= max_connections_) {
      if (counters_.connections_refused++ == 0) {
        log_->warn("{} connections open on {}: refusing more (source.tcp.max_connections)",
                   connections_.size(), listen_.to_string());
      }
      return false;
    }
    ++counters_.connections_accepted;
    return true;
  };
  co_await accept_connections(
      acceptor_, stopped_, admit, [this](tcp::socket socket) { return serve(std::move(socket)); },
      log_, listen_.to_string());
}

asio::awaitable<void> TcpSource::serve(tcp::socket socket) {
  const std::string peer = peer_of(socket);
  log_->debug("connection from {}", peer);
  connections_.insert(&socket);
  ++counters_.connections_open;

  LineFramer framer(max_line_bytes_);
  // The read buffer and parsed values are shared by all connections (one thread, and each read
  // is handled to the end before the next): an idle connection costs its framer, not a buffer.
  std::vector<char>& buffer = read_buffer_;
  std::vector<std::int64_t>& values = values_;
  const auto collect = [&values](std::int64_t v) { values.push_back(v); };
  bool logged_rejection = false;

  // Hands over what one read produced and folds the framer's counter changes into ours.
  LineCounters reported;
  const auto publish = [&] {
    if (!values.empty()) on_values_(values);
    values.clear();
    const LineCounters& now = framer.counters();
    if (!logged_rejection && now.rejected() > reported.rejected()) {
      log_->warn(
          "rejected a line from {}: {}; further rejections on this connection are only counted",
          peer, first_rejection_reason(reported, now));
      logged_rejection = true;
    }
    counters_.lines.accepted += now.accepted - reported.accepted;
    counters_.lines.empty += now.empty - reported.empty;
    counters_.lines.not_integer += now.not_integer - reported.not_integer;
    counters_.lines.out_of_range += now.out_of_range - reported.out_of_range;
    counters_.lines.too_long += now.too_long - reported.too_long;
    reported = now;
  };

  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  int full_reads = 0;  // reads in a row that filled the buffer: more data is likely waiting
  while (!ec) {
    while (paused_ && !stopped_ && socket.is_open()) {
      co_await resume_signal_.async_wait(use_tuple);
    }
    // Wait for readiness only when the last read drained the socket; after a few full reads in a
    // row, wait anyway so that one busy connection cannot starve the others.
    if (full_reads == 0 || full_reads >= 8) {
      full_reads = 0;
      std::tie(ec) = co_await socket.async_wait(tcp::socket::wait_read, use_tuple);
      if (ec) break;
    }
    const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
    full_reads = n == buffer.size() ? full_reads + 1 : 0;
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      continue;
    }
    if (n > 0) {
      framer.feed(std::string_view(buffer.data(), n), collect);
      publish();
    }
  }
  if (ec == asio::error::eof) {
    framer.finish(collect);  // a last line without '\n' counts
    publish();
  } else if (!stopped_) {
    log_->debug("connection from {} ended: {}", peer, ec.message());
  }
  connections_.erase(&socket);
  --counters_.connections_open;
  const auto& totals = framer.counters();
  log_->debug("connection from {} closed: {} values, {} rejected lines", peer, totals.accepted,
              totals.rejected());
}

void TcpSource::pause() {
  if (paused_) return;
  paused_ = true;
  ++counters_.pauses;
  // Set once here, not by each waiter: changing the expiry would cancel the other waiters.
  resume_signal_.expires_at(asio::steady_timer::time_point::max());
}

void TcpSource::resume() {
  paused_ = false;
  resume_signal_.cancel();
}

void TcpSource::stop() {
  stopped_ = true;
  resume_signal_.cancel();
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto* socket : connections_) socket->close(ignored);
}

}  // namespace tumbled::source
