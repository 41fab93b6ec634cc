// Listening sockets shared by every listener of the daemon (the TCP source, the HTTP server).
//
// listen_on() binds and listens, throwing std::runtime_error naming the address and the config
// key when it cannot (startup only). accept_connections() is the accept loop: each admitted socket
// is served by a coroutine of its own, and an exception escaping one is caught there, counted in
// `failures` and logged at most once per 30 s, so no client can end the loop or the process.
// ConnectionTable knows the open connections of one listener and when each was last active, for
// idle timeouts, eviction at a connection cap and stop(). Everything runs on one executor: no
// locks.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.hpp"

namespace spdlog {
class logger;
}

namespace tumbled::net {

void listen_on(boost::asio::ip::tcp::acceptor& acceptor, const config::Endpoint& address,
               std::string_view what);

// For warnings a client can repeat at will: allow() is true at the first call, then at most once
// per 30 s, so that the log says what happens without a client being able to flood it.
class LogThrottle {
 public:
  bool allow() {
    const auto now = std::chrono::steady_clock::now();
    if (logged_ && now - last_ < std::chrono::seconds(30)) return false;
    logged_ = true;
    last_ = now;
    return true;
  }

 private:
  std::chrono::steady_clock::time_point last_;
  bool logged_ = false;
};

// "address:port" of the socket's peer, for logs; "unknown peer" once it has gone.
std::string peer_of(const boost::asio::ip::tcp::socket& socket);

// What the completion of a connection's coroutine does with an exception that ended it: counts it
// in `failures` and logs it (throttled), naming the listener `what`; nothing without one.
void connection_failed(std::exception_ptr error, std::uint64_t& failures, LogThrottle& throttle,
                       spdlog::logger& log, const std::string& what);

using ServeFn = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;

// Accepts on `acceptor` until `stopped` turns true. A socket `admit()` refuses (it counts and logs
// why) is closed at once, so the client sees its connection end instead of hanging in the
// backlog. Accept errors (typically EMFILE) pause 100 ms, so existing connections keep being
// served. `what` names the listener in logs.
boost::asio::awaitable<void> accept_connections(boost::asio::ip::tcp::acceptor& acceptor,
                                                const bool& stopped, std::function<bool()> admit,
                                                ServeFn serve, std::shared_ptr<spdlog::logger> log,
                                                std::string what, std::uint64_t& failures);

// The open connections of one listener. A serving coroutine add()s its socket, marks activity
// through the Entry it gets (node addresses are stable) and remove()s it when it ends; close() of
// a socket makes its pending I/O end with an error, which ends its coroutine.
class ConnectionTable {
 public:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    Clock::time_point last_active;
    bool busy = false;     // answering a request: never the idle one
    bool closing = false;  // closed by this table; its coroutine has yet to remove() it
  };

  Entry& add(boost::asio::ip::tcp::socket& socket);  // valid until remove()
  void remove(boost::asio::ip::tcp::socket& socket);
  // Connections open and not being closed: what a connection cap compares with.
  std::size_t size() const { return entries_.size() - closing_; }

  // Closes the connection that has been inactive longest, if it has been for at least
  // `at_least`. False if there is none.
  bool evict_idlest(Clock::duration at_least);
  // Closes every connection inactive for `idle` or longer; returns how many.
  std::size_t close_idle(Clock::duration idle);
  // Marks every connection active now: after a pause in which none was read on purpose.
  void touch_all();
  // Closes every connection; with keep_busy, not those answering a request (they end after it).
  void close_all(bool keep_busy = false);

 private:
  void close(std::pair<boost::asio::ip::tcp::socket* const, Entry>& connection);

  std::unordered_map<boost::asio::ip::tcp::socket*, Entry> entries_;
  std::size_t closing_ = 0;
};

}  // namespace tumbled::net
