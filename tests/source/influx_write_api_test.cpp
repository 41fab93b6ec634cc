// Unit tests for source/influx_write_api: routing, precisions, credentials and error bodies.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>

#include "printable.hpp"
#include "source/influx_write_api.hpp"

using tumbled::source::authorized;
using tumbled::source::error_body;
using tumbled::source::partial_write_message;
using tumbled::source::Precision;
using tumbled::source::route;
using tumbled::source::WriteRoute;

using tumbled::test::visible;

namespace {

using Kind = WriteRoute::Kind;

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::ping: return "ping";
    case Kind::write: return "write";
    case Kind::not_found: return "not_found";
    case Kind::method_not_allowed: return "method_not_allowed";
    case Kind::bad_request: return "bad_request";
  }
  return "?";
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::ns: return "ns";
    case Precision::us: return "us";
    case Precision::ms: return "ms";
    case Precision::s: return "s";
    case Precision::m: return "m";
    case Precision::h: return "h";
  }
  return "?";
}

}  // namespace

TEST_CASE("write api: each path answers its methods", "[write_api][source]") {
  const auto [method, target, kind, allow] =
      GENERATE(table<std::string, std::string, Kind, std::string>({
          // /ping: GET and HEAD, whatever the query.
          {"GET", "/ping", Kind::ping, ""},
          {"HEAD", "/ping", Kind::ping, ""},
          {"GET", "/ping?verbose=true", Kind::ping, ""},
          {"GET", "/p%69ng", Kind::ping, ""},
          {"POST", "/ping", Kind::method_not_allowed, "GET, HEAD"},
          {"PUT", "/ping", Kind::method_not_allowed, "GET, HEAD"},
          {"DELETE", "/ping", Kind::method_not_allowed, "GET, HEAD"},
          {"OPTIONS", "/ping", Kind::method_not_allowed, "GET, HEAD"},
          {"get", "/ping", Kind::method_not_allowed, "GET, HEAD"},  // methods are case-sensitive
          // /write: POST only.
          {"POST", "/write", Kind::write, ""},
          {"POST", "/write?db=telegraf&rp=autogen&u=me&consistency=any", Kind::write, ""},
          {"POST", "/write?", Kind::write, ""},
          {"POST", "/wr%69te", Kind::write, ""},
          {"GET", "/write", Kind::method_not_allowed, "POST"},
          {"HEAD", "/write", Kind::method_not_allowed, "POST"},
          {"PUT", "/write", Kind::method_not_allowed, "POST"},
          {"PATCH", "/write", Kind::method_not_allowed, "POST"},
          {"DELETE", "/write", Kind::method_not_allowed, "POST"},
          {"OPTIONS", "/write", Kind::method_not_allowed, "POST"},
          {"post", "/write", Kind::method_not_allowed, "POST"},
          // The method is checked before the query: a bad precision on a GET is still a 405.
          {"GET", "/write?precision=bogus", Kind::method_not_allowed, "POST"},
          // /api/v2/write: POST only.
          {"POST", "/api/v2/write", Kind::write, ""},
          {"POST", "/api/v2/write?org=o&orgID=0123&bucket=b", Kind::write, ""},
          {"POST", "/api%2Fv2%2Fwrite", Kind::write, ""},  // Go's URL.Path decodes %2F too
          {"GET", "/api/v2/write", Kind::method_not_allowed, "POST"},
          {"HEAD", "/api/v2/write", Kind::method_not_allowed, "POST"},
          {"PUT", "/api/v2/write", Kind::method_not_allowed, "POST"},
          // Absolute-form: only the path counts.
          {"POST", "http://localhost:8086/write?precision=s", Kind::write, ""},
          {"GET", "http://localhost:8086/ping", Kind::ping, ""},
          {"POST", "http://localhost:8086", Kind::not_found, ""},
          // Everything else, whatever the method.
          {"POST", "/", Kind::not_found, ""},
          {"GET", "/", Kind::not_found, ""},
          {"POST", "/write/", Kind::not_found, ""},
          {"GET", "/ping/", Kind::not_found, ""},
          {"POST", "/api/v2/write/", Kind::not_found, ""},
          {"POST", "/Write", Kind::not_found, ""},
          {"POST", "//write", Kind::not_found, ""},
          {"POST", "/write/../write", Kind::not_found, ""},
          {"POST", "/api/v1/write", Kind::not_found, ""},
          {"POST", "/api/v2/query", Kind::not_found, ""},
          {"GET", "/query?q=show+databases", Kind::not_found, ""},
          {"POST", "/write%3Fprecision=s", Kind::not_found, ""},  // an encoded '?' is in the path
          {"POST", "/write%00", Kind::not_found, ""},
          // Targets that are neither origin-form nor absolute-form, whatever the path and method.
          {"POST", "", Kind::bad_request, ""},
          {"POST", "write", Kind::bad_request, ""},
          {"OPTIONS", "*", Kind::bad_request, ""},
          {"POST", "/write#fragment", Kind::bad_request, ""},
          {"POST", "/wr%zzite", Kind::bad_request, ""},
          {"POST", "/write?precision=s%", Kind::bad_request, ""},
          {"POST", "/write?db=%zz", Kind::bad_request, ""},
          {"GET", "/write?db=%zz", Kind::bad_request, ""},
          {"POST", "/write?db=a b", Kind::bad_request, ""},
          {"POST", "/write?db=\x01", Kind::bad_request, ""},
          {"POST", "/wr\"ite", Kind::bad_request, ""},
          {"GET", "/nowhere?x=%G0", Kind::bad_request, ""},
      }));
  INFO(method << " " << visible(target));
  const WriteRoute r = route(method, target);
  CHECK(kind_name(r.kind) == std::string(kind_name(kind)));
  CHECK(r.allow == allow);
  if (kind == Kind::ping || kind == Kind::write) {
    CHECK(r.error.empty());
  } else {
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("write api: refusals say why", "[write_api][source]") {
  const auto [method, target, error] = GENERATE(table<std::string, std::string, std::string>({
      {"POST", "/ping", "method POST not allowed on /ping (use GET or HEAD)"},
      {"GET", "/write", "method GET not allowed on /write (use POST)"},
      {"DELETE", "/api/v2/write", "method DELETE not allowed on /api/v2/write (use POST)"},
      {"POST", "/nope", "not found: /nope (the endpoints are /write, /api/v2/write and /ping)"},
      {"POST", "/no%20pe", "not found: /no pe (the endpoints are /write, /api/v2/write and /ping)"},
      {"POST", "/write?db=%zz", "invalid request target"},
  }));
  INFO(method << " " << visible(target));
  CHECK(route(method, target).error == error);
}

TEST_CASE("write api: every precision of both APIs", "[write_api][source]") {
  const auto [target, precision] = GENERATE(table<std::string, Precision>({
      // v1: InfluxDB 1.8's serveWriteV1 list; absent or empty means ns.
      {"/write", Precision::ns},
      {"/write?precision=", Precision::ns},
      {"/write?precision", Precision::ns},
      {"/write?precision=n", Precision::ns},
      {"/write?precision=ns", Precision::ns},
      {"/write?precision=u", Precision::us},
      {"/write?precision=ms", Precision::ms},
      {"/write?precision=s", Precision::s},
      {"/write?precision=m", Precision::m},
      {"/write?precision=h", Precision::h},
      {"/write?db=x&precision=h&rp=y", Precision::h},
      // Percent-encoded keys and values are decoded first.
      {"/write?precision=m%73", Precision::ms},
      {"/write?pre%63ision=s", Precision::s},
      {"/write?%70recision=%68", Precision::h},
      // A repeated key counts by its first value, as Go's url.Values.Get reads it.
      {"/write?precision=s&precision=h", Precision::s},
      {"/write?precision=h&precision=bogus", Precision::h},
      // Keys are case-sensitive: `Precision` is another, ignored parameter.
      {"/write?Precision=h", Precision::ns},
      // v2: InfluxDB 2's ValidPrecision list; absent or empty means ns.
      {"/api/v2/write", Precision::ns},
      {"/api/v2/write?precision=", Precision::ns},
      {"/api/v2/write?precision=ns", Precision::ns},
      {"/api/v2/write?precision=us", Precision::us},
      {"/api/v2/write?precision=ms", Precision::ms},
      {"/api/v2/write?precision=s", Precision::s},
      {"/api/v2/write?bucket=b&org=o&precision=u%73", Precision::us},
      {"/api/v2/write?precision=ms&precision=u", Precision::ms},
  }));
  INFO(visible(target));
  const WriteRoute r = route("POST", target);
  REQUIRE(kind_name(r.kind) == std::string(kind_name(Kind::write)));
  CHECK(precision_name(r.precision) == std::string(precision_name(precision)));
}

TEST_CASE("write api: an unknown precision is a bad request naming the accepted ones",
          "[write_api][source]") {
  const std::string v1 = " (use n, ns, u, ms, s, m or h)";
  const std::string v2 = " (use ns, us, ms or s)";
  const auto [target, error] = GENERATE_COPY(table<std::string, std::string>({
      {"/write?precision=us", "invalid precision \"us\"" + v1},  // InfluxDB 1.x refuses it too
      {"/write?precision=%C2%B5", "invalid precision \"\xC2\xB5\"" + v1},
      {"/write?precision=S", "invalid precision \"S\"" + v1},
      {"/write?precision=NS", "invalid precision \"NS\"" + v1},
      {"/write?precision=sec", "invalid precision \"sec\"" + v1},
      {"/write?precision=+s", "invalid precision \" s\"" + v1},  // '+' is a space
      {"/write?precision=s%20", "invalid precision \"s \"" + v1},
      {"/write?precision=bogus&precision=s", "invalid precision \"bogus\"" + v1},
      {"/api/v2/write?precision=n", "invalid precision \"n\"" + v2},
      {"/api/v2/write?precision=u", "invalid precision \"u\"" + v2},
      {"/api/v2/write?precision=m", "invalid precision \"m\"" + v2},
      {"/api/v2/write?precision=h", "invalid precision \"h\"" + v2},
      {"/api/v2/write?precision=%22%5C", "invalid precision \"\"\\\"" + v2},
  }));
  INFO(visible(target));
  const WriteRoute r = route("POST", target);
  CHECK(kind_name(r.kind) == std::string(kind_name(Kind::bad_request)));
  CHECK(r.error == error);
  CHECK(r.allow.empty());
}

TEST_CASE("write api: the query password is `p`, decoded", "[write_api][source]") {
  const auto [target, password] = GENERATE(table<std::string, std::string>({
      {"/write", ""},
      {"/write?p=", ""},
      {"/write?p=secret", "secret"},
      {"/write?u=me&p=secret&db=x", "secret"},
      {"/write?p=se%20cret", "se cret"},
      {"/write?p=se+cret", "se cret"},
      {"/write?p=%26%3D%2B", "&=+"},
      {"/write?p=a&p=b", "a"},
      {"/write?P=secret", ""},
      {"/write?u=secret", ""},
      {"/api/v2/write?bucket=b&p=secret", "secret"},
      {"http://localhost/write?p=secret", "secret"},
  }));
  INFO(visible(target));
  const WriteRoute r = route("POST", target);
  REQUIRE(kind_name(r.kind) == std::string(kind_name(Kind::write)));
  CHECK(r.query_password == password);
}

TEST_CASE("write api: the token in every accepted form, and nothing else", "[write_api][source]") {
  const auto [token, header, password, expected] =
      GENERATE(table<std::string, std::string, std::string, bool>({
          // No token: every request, credentials or not.
          {"", "", "", true},
          {"", "Token wrong", "wrong", true},
          {"", "garbage", "", true},
          // Nothing presented.
          {"s3cret", "", "", false},
          // Token <token> and Token <user>:<token>; the scheme word in any case.
          {"s3cret", "Token s3cret", "", true},
          {"s3cret", "token s3cret", "", true},
          {"s3cret", "TOKEN s3cret", "", true},
          {"s3cret", "ToKeN s3cret", "", true},
          {"s3cret", "Token user:s3cret", "", true},
          {"s3cret", "Token :s3cret", "", true},
          {"s3cret", "Token s3cre", "", false},
          {"s3cret", "Token s3cretx", "", false},
          {"s3cret", "Token S3cret", "", false},
          {"s3cret", "Token user:wrong", "", false},
          {"s3cret", "Token s3cret:user", "", false},
          {"s3cret", "Token ", "", false},
          {"s3cret", "Token", "", false},
          {"s3cret", "Token  s3cret", "", false},
          {"s3cret", "Token s3cret ", "", false},
          {"s3cret", "Tokens3cret", "", false},
          {"s3cret", "Tok s3cret", "", false},
          // A token holding a colon, whole or after a user.
          {"a:b", "Token a:b", "", true},
          {"a:b", "Token u:a:b", "", true},
          {"a:b", "Token a", "", false},
          // Bearer <token>.
          {"s3cret", "Bearer s3cret", "", true},
          {"s3cret", "bearer s3cret", "", true},
          {"s3cret", "Bearer wrong", "", false},
          {"s3cret", "Bearer user:s3cret", "", false},
          {"s3cret", "Bearer ", "", false},
          // Basic base64(<user>:<token>), any user.
          {"s3cret", "Basic dXNlcjpzM2NyZXQ=", "", true},       // user:s3cret
          {"s3cret", "basic dXNlcjpzM2NyZXQ=", "", true},       // user:s3cret
          {"s3cret", "BASIC dXNlcjpzM2NyZXQ=", "", true},       // user:s3cret
          {"s3cret", "Basic OnMzY3JldA==", "", true},           // :s3cret
          {"s3cret", "Basic b3RoZXI6czNjcmV0", "", true},       // other:s3cret
          {"a:b", "Basic dTphOmI=", "", true},                  // u:a:b
          {"s3cret", "Basic dXNlcjp3cm9uZw==", "", false},      // user:wrong
          {"s3cret", "Basic dXNlcjpzM2NyZQ==", "", false},      // user:s3cre
          {"s3cret", "Basic dXNlcjpzM2NyZXQ6eA==", "", false},  // user:s3cret:x
          {"s3cret", "Basic dXNlcjo=", "", false},              // user:
          {"s3cret", "Basic czNjcmV0", "", false},              // s3cret, no user part
          {"s3cret", "Basic s3cret", "", false},                // not base64 of anything useful
          // Malformed base64: a decoder stopping early would read u:s3cret from each of these.
          {"s3cret", "Basic dXNlcjpzM2NyZXQ", "", false},   // padding missing
          {"s3cret", "Basic dTpzM2NyZXQ!", "", false},      // a byte outside the alphabet
          {"s3cret", "Basic dTpzM2NyZXQ=AAAA", "", false},  // padding in the middle
          {"s3cret", "Basic dTpzM2NyZXQ===", "", false},    // too much padding
          {"s3cret", "Basic !!!!", "", false},
          {"s3cret", "Basic ", "", false},
          {"s3cret", "Basic  dXNlcjpzM2NyZXQ=", "", false},
          // Other schemes, or none.
          {"s3cret", "Digest s3cret", "", false},
          {"s3cret", "s3cret", "", false},
          {"s3cret", " s3cret", "", false},
          // v1 p=<token>: any one form carrying the token is enough.
          {"s3cret", "", "s3cret", true},
          {"s3cret", "", "wrong", false},
          {"s3cret", "", "s3cre", false},
          {"s3cret", "Token wrong", "s3cret", true},
          {"s3cret", "Token s3cret", "wrong", true},
          {"s3cret", "Token wrong", "wrong", false},
      }));
  INFO("token=" << visible(token) << " header=" << visible(header) << " p=" << visible(password));
  CHECK(authorized(token, header, password) == expected);
}

TEST_CASE("write api: error bodies are InfluxDB's JSON, valid whatever the message",
          "[write_api][source]") {
  const auto [message, body] = GENERATE(table<std::string, std::string>({
      {"database not found", R"({"error":"database not found"})"},
      {"", R"({"error":""})"},
      {R"(say "hi")", R"({"error":"say \"hi\""})"},
      {R"(a\b)", R"({"error":"a\\b"})"},
      {"a\nb", R"({"error":"a\nb"})"},
      {"a\r\tb", R"({"error":"a\r\tb"})"},
      {std::string("a\0b", 3), R"({"error":"a\u0000b"})"},
      {"a\x01"
       "b\x1f",
       R"({"error":"a\u0001b\u001f"})"},
      {"del \x7f", "{\"error\":\"del \x7f\"}"},  // DEL needs no escape in JSON
      {"caf\xC3\xA9 \xE2\x9A\xA1",
       "{\"error\":\"caf\xC3\xA9 \xE2\x9A\xA1\"}"},  // valid UTF-8 stays
      {"bad \xFF byte", R"({"error":"bad \ufffd byte"})"},
      {"cut \xC3", R"({"error":"cut \ufffd"})"},
      {"overlong \xC0\xAF", R"({"error":"overlong \ufffd\ufffd"})"},
      {"surrogate \xED\xA0\x80", R"({"error":"surrogate \ufffd\ufffd\ufffd"})"},
      {"unable to parse 'm,t=\"x\\\" v=': missing field value",
       R"({"error":"unable to parse 'm,t=\"x\\\" v=': missing field value"})"},
  }));
  INFO(visible(message));
  CHECK(error_body(message) == body);
}

TEST_CASE("write api: a refusal's message is escaped into its body", "[write_api][source]") {
  const WriteRoute r = route("POST", "/write?precision=%22%0A");
  REQUIRE(kind_name(r.kind) == std::string(kind_name(Kind::bad_request)));
  CHECK(error_body(r.error) ==
        R"json({"error":"invalid precision \"\"\n\" (use n, ns, u, ms, s, m or h)"})json");
}

TEST_CASE("write api: partial write messages in InfluxDB 1.x's words", "[write_api][source]") {
  const auto [reason, dropped, message] = GENERATE(table<std::string, std::uint64_t, std::string>({
      {"unable to parse 'm v=': missing field value", 3,
       "partial write: unable to parse 'm v=': missing field value dropped=3"},
      {"field type conflict", 0, "partial write: field type conflict dropped=0"},
      {"x", std::numeric_limits<std::uint64_t>::max(),
       "partial write: x dropped=18446744073709551615"},
      {"", 1, "partial write:  dropped=1"},
  }));
  CHECK(partial_write_message(reason, dropped) == message);
}
