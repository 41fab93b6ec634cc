// Feeding newline-delimited input to a TCP listener on 127.0.0.1.
//
// Contract: send_all() connects, writes the whole payload, half-closes the
// send side (so the peer sees a clean EOF after the last byte, like `nc -N`)
// and closes. TcpFeeder keeps one connection open so a test can interleave
// sends with other actions (advance time, kill influx, ...). Every blocking
// step is bounded by `timeout` and throws boost::system::system_error on
// failure (refused, reset, timeout) rather than hanging the test when the
// peer stops reading; by default that bound is the hang guard (process.hpp).
// A TcpFeeder is used from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "support/process.hpp"

namespace tumbled::test {

void send_all(std::uint16_t port, std::string_view payload,
              std::chrono::milliseconds timeout = hang_guard());

class TcpFeeder {
 public:
  explicit TcpFeeder(std::uint16_t port, std::chrono::milliseconds timeout = hang_guard());
  ~TcpFeeder();  // closes (without throwing) if still open
  TcpFeeder(const TcpFeeder&) = delete;
  TcpFeeder& operator=(const TcpFeeder&) = delete;

  void send(std::string_view data);
  // Half-close then close: the peer reads everything sent, then EOF.
  void close();
  bool is_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tumbled::test
