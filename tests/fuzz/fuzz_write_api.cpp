// libFuzzer target for source/influx_write_api: the pure core of the HTTP source, which sees
// every request's method, target and Authorization header before anything else does.
// Invariants checked (any violation aborts, which libFuzzer reports; so does any exception):
//   - route() sorts every target into exactly one kind; a write has a precision its API knows
//     and no error, every other kind but ping has an error message, 405 an Allow value;
//   - error_body() is always one JSON object {"error":"..."} whose string is valid UTF-8 with
//     no raw control character or unescaped quote (so any client can parse it);
//   - authorized(): an empty token admits everything; a token admits its own `Token <t>`
//     header and `p=<t>`, and refuses a header carrying the token with one byte changed.
#include <fuzzer/FuzzedDataProvider.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "source/influx_write_api.hpp"

using namespace tumbled::source;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_write_api: invariant violated: %s\n", what);
  std::abort();
}

#define CHECK(cond)           \
  do {                        \
    if (!(cond)) fail(#cond); \
  } while (0)

// The body is {"error":"<s>"} with <s> a JSON string: escapes valid, no control bytes, UTF-8.
bool valid_error_body(const std::string& body) {
  const std::string head = "{\"error\":\"";
  if (body.size() < head.size() + 2 || body.compare(0, head.size(), head) != 0) return false;
  if (body.compare(body.size() - 2, 2, "\"}") != 0) return false;
  const std::string_view s(body.data() + head.size(), body.size() - head.size() - 2);
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"') return false;
    if (c == '\\') {
      if (++i >= s.size()) return false;
      const char e = s[i];
      if (e == 'u') {
        if (i + 4 >= s.size()) return false;
        for (int k = 1; k <= 4; ++k) {
          if (!std::isxdigit(static_cast<unsigned char>(s[i + k]))) return false;
        }
        i += 4;
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
      continue;
    }
    if (c >= 0x80) {  // a whole, shortest UTF-8 sequence
      const int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
      if (extra < 0 || c > 0xF4 || i + extra >= s.size()) return false;
      for (int k = 1; k <= extra; ++k) {
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
      }
      i += extra;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string method = in.PickValueInArray({"GET", "HEAD", "POST", "PUT", "get"});
  const std::string token = in.ConsumeRandomLengthString(64);
  const std::string header = in.ConsumeRandomLengthString(256);
  const std::string target = in.ConsumeRemainingBytesAsString();

  const WriteRoute r = route(method, target);
  switch (r.kind) {
    case WriteRoute::Kind::write:
      CHECK(method == "POST");
      CHECK(r.error.empty());
      CHECK(r.precision <= Precision::h);
      break;
    case WriteRoute::Kind::ping: CHECK(method == "GET" || method == "HEAD"); break;
    case WriteRoute::Kind::method_not_allowed:
      CHECK(!r.allow.empty());
      CHECK(!r.error.empty());
      break;
    case WriteRoute::Kind::not_found:
    case WriteRoute::Kind::bad_request: CHECK(!r.error.empty()); break;
  }
  CHECK(valid_error_body(error_body(r.error.empty() ? target : r.error)));
  CHECK(valid_error_body(error_body(partial_write_message(target, size))));

  CHECK(authorized("", header, r.query_password));
  if (!token.empty()) {
    CHECK(authorized(token, "Token " + token, ""));
    CHECK(authorized(token, "", token));
    std::string changed = token;
    changed[changed.size() / 2] = static_cast<char>(changed[changed.size() / 2] ^ 0x01);
    CHECK(!authorized(token, "Token " + changed, ""));
    CHECK(!authorized(token, "", changed));
  }
  return 0;
}
