#include "net/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tumbled::net {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

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

asio::awaitable<void> accept_connections(tcp::acceptor& acceptor, const bool& stopped,
                                         std::function<bool()> admit, ServeFn serve,
                                         std::shared_ptr<spdlog::logger> log, std::string what,
                                         std::uint64_t& failures) {
  // Shared by the completion handlers of the connections, which may outlive this loop.
  auto throttle = std::make_shared<LogThrottle>();
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
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)),
                   [log, what, throttle, &failures](std::exception_ptr error) {
                     connection_failed(error, failures, *throttle, *log, what);
                   });
  }
}

void connection_failed(std::exception_ptr error, std::uint64_t& failures, LogThrottle& throttle,
                       spdlog::logger& log, const std::string& what) {
  if (!error) return;
  ++failures;
  if (!throttle.allow()) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log.error(
        "a connection on {} failed: {}; closed it and serving the others ({} such failures so "
        "far, logged at most every 30 s)",
        what, e.what(), failures);
  } catch (...) {
    log.error("a connection on {} failed; closed it ({} such failures so far)", what, failures);
  }
}

std::string peer_of(const tcp::socket& socket) {
  boost::system::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return "unknown peer";
  return peer.address().to_string() + ":" + std::to_string(peer.port());
}

ConnectionTable::Entry& ConnectionTable::add(tcp::socket& socket) {
  auto& entry = entries_[&socket];
  entry.last_active = Clock::now();
  return entry;
}

void ConnectionTable::remove(tcp::socket& socket) {
  const auto it = entries_.find(&socket);
  if (it == entries_.end()) return;
  if (it->second.closing) --closing_;
  entries_.erase(it);
}

void ConnectionTable::close(std::pair<tcp::socket* const, Entry>& connection) {
  boost::system::error_code ignored;
  connection.first->close(ignored);
  connection.second.closing = true;
  ++closing_;
}

bool ConnectionTable::evict_idlest(Clock::duration at_least) {
  std::pair<tcp::socket* const, Entry>* idlest = nullptr;
  for (auto& connection : entries_) {
    const Entry& entry = connection.second;
    if (entry.busy || entry.closing) continue;
    if (!idlest || entry.last_active < idlest->second.last_active) idlest = &connection;
  }
  if (!idlest || Clock::now() - idlest->second.last_active < at_least) return false;
  close(*idlest);
  return true;
}

std::size_t ConnectionTable::close_idle(Clock::duration idle) {
  const auto now = Clock::now();
  std::size_t closed = 0;
  for (auto& connection : entries_) {
    const Entry& entry = connection.second;
    if (entry.busy || entry.closing || now - entry.last_active < idle) continue;
    close(connection);
    ++closed;
  }
  return closed;
}

void ConnectionTable::touch_all() {
  const auto now = Clock::now();
  for (auto& [socket, entry] : entries_) entry.last_active = now;
}

void ConnectionTable::close_all(bool keep_busy) {
  boost::system::error_code ignored;
  for (auto& [socket, entry] : entries_) {
    if (!keep_busy || !entry.busy) socket->close(ignored);
  }
}

}  // namespace tumbled::net
