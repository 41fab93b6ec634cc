#include "source/tcp_source.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <tuple>
#include <vector>

namespace tumbled::source {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunkBytes = 256 * 1024;
// At max_connections, a connection silent this long may be closed for a newcomer.
constexpr auto kEvictableAfter = std::chrono::seconds(10);

}  // namespace

TcpSource::TcpSource(asio::any_io_executor executor, config::Endpoint listen,
                     std::size_t max_connections, config::Millis idle_timeout,
                     DecoderFactory decoders, std::shared_ptr<spdlog::logger> log)
    : listen_(std::move(listen)),
      max_connections_(max_connections),
      idle_timeout_(idle_timeout),
      decoders_(std::move(decoders)),
      log_(std::move(log)),
      acceptor_(executor),
      idle_timer_(executor),
      resume_signal_(executor),
      read_buffer_(kReadChunkBytes) {}

void TcpSource::listen() {
  net::listen_on(acceptor_, listen_, "source.tcp.listen");
}

config::Endpoint TcpSource::local_endpoint() const {
  const auto endpoint = acceptor_.local_endpoint();
  return {endpoint.address().to_string(), endpoint.port()};
}

bool TcpSource::admit() {
  if (connections_.size() < max_connections_) {
    ++counters_.connections_accepted;
    return true;
  }
  // While paused nobody is read, so silence says nothing about a connection: refuse.
  if (!paused_ && connections_.evict_idlest(kEvictableAfter)) {
    ++counters_.connections_accepted;
    if (counters_.connections_evicted++ == 0) {
      log_->warn(
          "{} connections open on {} (source.tcp.max_connections): closing the one silent "
          "longest to admit a new one; further evictions are only counted",
          connections_.size() + 1, listen_.to_string());
    }
    return true;
  }
  if (counters_.connections_refused++ == 0) {
    log_->warn(
        "{} connections open on {}, none silent for {} s: refusing more "
        "(source.tcp.max_connections); further refusals are only counted",
        connections_.size(), listen_.to_string(),
        std::chrono::duration_cast<std::chrono::seconds>(kEvictableAfter).count());
  }
  return false;
}

asio::awaitable<void> TcpSource::run() {
  // Both end after stop(); run() returns only then, so nothing of this source runs after it.
  co_await (net::accept_connections(
                acceptor_, stopped_, [this] { return admit(); },
                [this](tcp::socket socket) { return serve(std::move(socket)); }, log_,
                listen_.to_string(), counters_.connection_failures) &&
            close_idle_connections());
}

asio::awaitable<void> TcpSource::close_idle_connections() {
  if (idle_timeout_.count() == 0) co_return;
  // A quarter of the timeout between checks: a silent connection closes within 1.25 of it.
  const auto every = std::max<config::Millis>(idle_timeout_ / 4, config::Millis(10));
  while (!stopped_) {
    idle_timer_.expires_after(every);
    co_await idle_timer_.async_wait(use_tuple);
    if (stopped_ || paused_) continue;
    const std::size_t closed = connections_.close_idle(idle_timeout_);
    if (closed == 0) continue;
    if (counters_.connections_idle_closed == 0) {
      log_->info(
          "closed {} connections on {} silent for {} (source.tcp.idle_timeout); further ones "
          "are only counted",
          closed, listen_.to_string(), config::format_duration(idle_timeout_));
    }
    counters_.connections_idle_closed += closed;
  }
}

asio::awaitable<void> TcpSource::serve(tcp::socket socket) {
  // Accepted just before stop(): its handler ran after stop() closed the others and must not
  // read past the final checkpoint.
  if (stopped_) co_return;
  const std::string peer = net::peer_of(socket);
  log_->debug("connection from {}", peer);
  net::ConnectionTable::Entry& connection = connections_.add(socket);
  ++counters_.connections_open;

  const std::unique_ptr<Decoder> decoder = decoders_({});
  // The read buffer is shared by all connections (one thread, and each read is decoded to the
  // end before the next): an idle connection costs its decoder, not a buffer.
  std::vector<char>& buffer = read_buffer_;
  bool logged_rejection = false;

  // Folds the decoder's counter changes into ours and logs the connection's first rejection.
  LineCounters reported;
  const auto publish = [&] {
    const LineCounters& now = decoder->counters();
    if (!logged_rejection && now.rejected() > reported.rejected()) {
      log_->warn(
          "rejected a line from {}: {}; further rejections on this connection are only counted",
          peer, decoder->last_rejection());
      logged_rejection = true;
    }
    counters_.lines += now;
    counters_.lines -= reported;
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
    if (n > 0) connection.last_active = net::ConnectionTable::Clock::now();
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      continue;
    }
    if (n > 0) {
      decoder->feed(std::string_view(buffer.data(), n));
      publish();
    }
  }
  if (ec == asio::error::eof) {
    decoder->finish();  // a last line without '\n' counts
    publish();
  } else if (!stopped_) {
    log_->debug("connection from {} ended: {}", peer, ec.message());
  }
  connections_.remove(socket);
  --counters_.connections_open;
  const auto& totals = decoder->counters();
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
  if (paused_) connections_.touch_all();  // nobody was read: the silence was ours
  paused_ = false;
  resume_signal_.cancel();
}

void TcpSource::stop() {
  stopped_ = true;
  resume_signal_.cancel();
  idle_timer_.cancel();
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  connections_.close_all();
}

}  // namespace tumbled::source
