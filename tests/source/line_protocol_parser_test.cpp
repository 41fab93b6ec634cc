// Unit tests for source/line_protocol_parser: InfluxDB 1.x line protocol, one line at a time.
// Tables: every example of InfluxDB's line protocol reference and tutorial (docs-v2,
// content/influxdb/v1/write_protocols/), and the single-line cases of InfluxDB's
// models/points_test.go (master-1.x), each marked with its source. Where we differ from
// points.go on purpose (see line_protocol_parser.cpp) the row says so. Then: views and scratch
// reuse, many tags and fields, the series key limit, and parse(append_point(x)) == x with
// sink/line_protocol's encoder.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "sink/line_protocol.hpp"
#include "source/line_protocol_parser.hpp"

using tumbled::source::describe;
using tumbled::source::LineProtocolParser;
using tumbled::source::ParsedField;
using tumbled::source::ParsedLine;
using tumbled::source::ParseError;
using tumbled::source::ParseResult;
using tumbled::source::ParseStatus;
using Type = ParsedField::Type;

namespace {

std::string number_text(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// One readable, unambiguous text per ParsedLine: m<..> t<k>=<v> f<k>=TYPE:VALUE @TIMESTAMP.
std::string render(const ParsedLine& line) {
  std::string out = "m<" + std::string(line.measurement) + ">";
  for (const auto& [key, value] : line.tags) {
    out += " t<" + std::string(key) + ">=<" + std::string(value) + ">";
  }
  for (const auto& field : line.fields) {
    out += " f<" + std::string(field.key) + ">=";
    switch (field.type) {
      case Type::integer: out += "i:" + std::to_string(field.i); break;
      case Type::unsigned_integer: out += "u:" + std::to_string(field.u); break;
      case Type::floating: out += "f:" + number_text(field.f); break;
      case Type::boolean: out += field.b ? "b:true" : "b:false"; break;
      case Type::string: out += "s<" + std::string(field.s) + ">"; break;
    }
  }
  if (line.timestamp) out += " @" + std::to_string(*line.timestamp);
  return out;
}

const char* status_name(ParseStatus status) {
  switch (status) {
    case ParseStatus::ok: return "ok";
    case ParseStatus::skip: return "skip";
    case ParseStatus::error: return "error";
  }
  return "?";
}

// "ok <render>", "skip" or "error <message> @<column>", so one comparison shows everything.
std::string outcome(std::string_view text) {
  LineProtocolParser parser;
  ParsedLine line;
  const ParseResult result = parser.parse(text, line);
  switch (result.status) {
    case ParseStatus::ok: return "ok " + render(line);
    case ParseStatus::skip: return "skip";
    case ParseStatus::error:
      return "error " + std::string(result.message) + " @" + std::to_string(result.column);
  }
  return status_name(result.status);
}

std::string error(ParseError reason, std::size_t column) {
  return "error " + std::string(describe(reason)) + " @" + std::to_string(column);
}

}  // namespace

TEST_CASE("line protocol parser: valid lines read as InfluxDB reads them",
          "[line_protocol_parser]") {
  const auto [source, text, expected] = GENERATE(table<const char*, std::string, std::string>({
      // --- Line protocol reference (v1): data types, quoting, special characters.
      {"reference", "mymeas value=-1.234456e+78", "m<mymeas> f<value>=f:-1.234456e+78"},
      {"reference", "mymeas value=1.0", "m<mymeas> f<value>=f:1"},
      {"reference", "mymeas value=1", "m<mymeas> f<value>=f:1"},
      {"reference", "mymeas value=1i", "m<mymeas> f<value>=i:1"},
      {"reference", R"(mymeas value="stringing along")", "m<mymeas> f<value>=s<stringing along>"},
      {"reference", "mymeas value=true", "m<mymeas> f<value>=b:true"},
      {"reference", R"(mymeas value="true")", "m<mymeas> f<value>=s<true>"},
      {"reference", "mymeas value=3 1465934559000000000",
       "m<mymeas> f<value>=f:3 @1465934559000000000"},
      {"reference", R"(mymeas value="stringing along" 1465934559000000001)",
       "m<mymeas> f<value>=s<stringing along> @1465934559000000001"},
      {"reference", R"(mymeas value="stringing along" 1466625759000000000)",
       "m<mymeas> f<value>=s<stringing along> @1466625759000000000"},
      {"reference", R"("mymeas" value=200)", R"(m<"mymeas"> f<value>=f:200)"},
      {"reference: float 1.e+78", "mymeas value=1.e+78", "m<mymeas> f<value>=f:1e+78"},
      {"reference: float 1.E+78", "mymeas value=1.E+78", "m<mymeas> f<value>=f:1e+78"},
      {"reference: min timestamp", "mymeas value=1 -9223372036854775806",
       "m<mymeas> f<value>=f:1 @-9223372036854775806"},
      {"reference: max timestamp", "mymeas value=1 9223372036854775806",
       "m<mymeas> f<value>=f:1 @9223372036854775806"},
      {"reference: special characters",
       R"("measurement\ with\ quo⚡️es\ and\ emoji",tag\ key\ with\ sp🚀ces=tag\,value\,with"commas" field_k\ey="string field value, only \" need be esc🍭ped")",
       R"(m<"measurement with quo⚡️es and emoji"> t<tag key with sp🚀ces>=<tag,value,with"commas"> f<field_k\ey>=s<string field value, only " need be esc🍭ped>)"},

      // --- Line protocol tutorial (v1).
      {"tutorial", "weather,location=us-midwest temperature=82 1465839830100400200",
       "m<weather> t<location>=<us-midwest> f<temperature>=f:82 @1465839830100400200"},
      {"tutorial", "weather,location=us-midwest,season=summer temperature=82 1465839830100400200",
       "m<weather> t<location>=<us-midwest> t<season>=<summer> f<temperature>=f:82 "
       "@1465839830100400200"},
      {"tutorial", "weather temperature=82 1465839830100400200",
       "m<weather> f<temperature>=f:82 @1465839830100400200"},
      {"tutorial", "weather,location=us-midwest temperature=82,humidity=71 1465839830100400200",
       "m<weather> t<location>=<us-midwest> f<temperature>=f:82 f<humidity>=f:71 "
       "@1465839830100400200"},
      {"tutorial", "weather,location=us-midwest temperature=82",
       "m<weather> t<location>=<us-midwest> f<temperature>=f:82"},
      {"tutorial", "weather,location=us-midwest temperature=82i 1465839830100400200",
       "m<weather> t<location>=<us-midwest> f<temperature>=i:82 @1465839830100400200"},
      {"tutorial", R"(weather,location=us-midwest temperature="too warm" 1465839830100400200)",
       "m<weather> t<location>=<us-midwest> f<temperature>=s<too warm> @1465839830100400200"},
      {"tutorial", "weather,location=us-midwest too_hot=true 1465839830100400200",
       "m<weather> t<location>=<us-midwest> f<too_hot>=b:true @1465839830100400200"},
      {"tutorial", "weather,location=us-midwest temperature=81i 1465839830100400300",
       "m<weather> t<location>=<us-midwest> f<temperature>=i:81 @1465839830100400300"},
      {"tutorial", "weather,location=us-midwest temperature=81i 1467154750000000000",
       "m<weather> t<location>=<us-midwest> f<temperature>=i:81 @1467154750000000000"},
      {"tutorial", R"("weather",location=us-midwest temperature=87 1465839830100400200)",
       R"(m<"weather"> t<location>=<us-midwest> f<temperature>=f:87 @1465839830100400200)"},
      {"tutorial", R"(weather,location=us-midwest temperature="82")",
       "m<weather> t<location>=<us-midwest> f<temperature>=s<82>"},
      {"tutorial", R"(weather,location=us\,midwest temperature=82 1465839830100400200)",
       "m<weather> t<location>=<us,midwest> f<temperature>=f:82 @1465839830100400200"},
      {"tutorial", R"(weather,location=us-midwest temp\=rature=82 1465839830100400200)",
       "m<weather> t<location>=<us-midwest> f<temp=rature>=f:82 @1465839830100400200"},
      {"tutorial", R"(weather,location\ place=us-midwest temperature=82 1465839830100400200)",
       "m<weather> t<location place>=<us-midwest> f<temperature>=f:82 @1465839830100400200"},
      {"tutorial", R"(wea\,ther,location=us-midwest temperature=82 1465839830100400200)",
       "m<wea,ther> t<location>=<us-midwest> f<temperature>=f:82 @1465839830100400200"},
      {"tutorial", R"(wea\ ther,location=us-midwest temperature=82 1465839830100400200)",
       "m<wea ther> t<location>=<us-midwest> f<temperature>=f:82 @1465839830100400200"},
      {"tutorial", R"(weather,location=us-midwest temperature="too\"hot\"" 1465839830100400200)",
       R"(m<weather> t<location>=<us-midwest> f<temperature>=s<too"hot"> @1465839830100400200)"},
      {"tutorial: backslashes",
       R"(weather,location=us-midwest temperature_str="too hot/cold" 1465839830100400201)",
       "m<weather> t<location>=<us-midwest> f<temperature_str>=s<too hot/cold> "
       "@1465839830100400201"},
      {"tutorial: backslashes",
       R"(weather,location=us-midwest temperature_str="too hot\cold" 1465839830100400202)",
       R"(m<weather> t<location>=<us-midwest> f<temperature_str>=s<too hot\cold> @1465839830100400202)"},
      {"tutorial: backslashes",
       R"(weather,location=us-midwest temperature_str="too hot\\cold" 1465839830100400203)",
       R"(m<weather> t<location>=<us-midwest> f<temperature_str>=s<too hot\cold> @1465839830100400203)"},
      {"tutorial: backslashes",
       R"(weather,location=us-midwest temperature_str="too hot\\\cold" 1465839830100400204)",
       R"(m<weather> t<location>=<us-midwest> f<temperature_str>=s<too hot\\cold> @1465839830100400204)"},
      {"tutorial: backslashes",
       R"(weather,location=us-midwest temperature_str="too hot\\\\cold" 1465839830100400205)",
       R"(m<weather> t<location>=<us-midwest> f<temperature_str>=s<too hot\\cold> @1465839830100400205)"},
      {"tutorial: backslashes",
       R"(weather,location=us-midwest temperature_str="too hot\\\\\cold" 1465839830100400206)",
       R"(m<weather> t<location>=<us-midwest> f<temperature_str>=s<too hot\\\cold> @1465839830100400206)"},
      {"tutorial: emoji", "we⛅️ther,location=us-midwest temper🔥ture=82 1465839830100400200",
       "m<we⛅️ther> t<location>=<us-midwest> f<temper🔥ture>=f:82 @1465839830100400200"},
      {"tutorial", R"(measurementName fieldKey="field string value" 1556813561098000000)",
       "m<measurementName> f<fieldKey>=s<field string value> @1556813561098000000"},

      // --- points_test.go: whitespace, escapes, quoting, numbers, booleans, timestamps.
      {"points_test NoTimestamp", "cpu value=1", "m<cpu> f<value>=f:1"},
      {"points_test Whitespace", "cpu    value=1.0 1257894000000000000",
       "m<cpu> f<value>=f:1 @1257894000000000000"},
      {"points_test Whitespace", "cpu value=1.0     1257894000000000000",
       "m<cpu> f<value>=f:1 @1257894000000000000"},
      {"points_test Whitespace", "cpu      value=1.0     1257894000000000000",
       "m<cpu> f<value>=f:1 @1257894000000000000"},
      {"points_test Whitespace", "cpu value=1.0 1257894000000000000   ",
       "m<cpu> f<value>=f:1 @1257894000000000000"},
      {"points_test Whitespace", "cpu value=1.0 1257894000000000000\n",
       "m<cpu> f<value>=f:1 @1257894000000000000"},
      {"points_test Whitespace", "cpu   value=1.0 1257894000000000000\n",
       "m<cpu> f<value>=f:1 @1257894000000000000"},
      {"points_test Unescape", R"(foo\,bar value=1i)", "m<foo,bar> f<value>=i:1"},
      {"points_test Unescape", R"(cpu\,main,regions=east value=1.0)",
       "m<cpu,main> t<regions>=<east> f<value>=f:1"},
      {"points_test Unescape", R"(cpu\ load,region=east value=1.0)",
       "m<cpu load> t<region>=<east> f<value>=f:1"},
      {"points_test Unescape: backslash literal", R"(cpu\=load,region=east value=1.0)",
       R"(m<cpu\=load> t<region>=<east> f<value>=f:1)"},
      {"points_test Unescape", "cpu=load,region=east value=1.0",
       "m<cpu=load> t<region>=<east> f<value>=f:1"},
      {"points_test Unescape", R"(cpu,region\,zone=east value=1.0)",
       "m<cpu> t<region,zone>=<east> f<value>=f:1"},
      {"points_test Unescape", R"(cpu,region\ zone=east value=1.0)",
       "m<cpu> t<region zone>=<east> f<value>=f:1"},
      {"points_test Unescape", R"(cpu,reg\\=ion=east value=1.0)",
       R"(m<cpu> t<reg\=ion>=<east> f<value>=f:1)"},
      {"points_test Unescape", R"(cpu,\ =east value=1.0)", "m<cpu> t< >=<east> f<value>=f:1"},
      {"points_test Unescape", R"(cpu,regions=east\,west value=1.0)",
       "m<cpu> t<regions>=<east,west> f<value>=f:1"},
      {"points_test Unescape", R"(cpu,regions=\\ east value=1.0)",
       R"(m<cpu> t<regions>=<\ east> f<value>=f:1)"},
      {"points_test Unescape", R"(cpu,regions=eas\\ t value=1.0)",
       R"(m<cpu> t<regions>=<eas\ t> f<value>=f:1)"},
      {"points_test Unescape", R"(cpu,regions=east\\  value=1.0)",
       R"(m<cpu> t<regions>=<east\ > f<value>=f:1)"},
      {"points_test Unescape", R"(cpu,regions=east\ west value=1.0)",
       "m<cpu> t<regions>=<east west> f<value>=f:1"},
      {"points_test Unescape", R"(cpu,regions=east value\,ms=1.0)",
       "m<cpu> t<regions>=<east> f<value,ms>=f:1"},
      {"points_test Unescape", R"(cpu,regions=east value\ ms=1.0)",
       "m<cpu> t<regions>=<east> f<value ms>=f:1"},
      {"points_test Unescape", R"(cpu,regions=east value="1")",
       "m<cpu> t<regions>=<east> f<value>=s<1>"},
      {"points_test Unescape", R"(cpu,regions=east value="1,0")",
       "m<cpu> t<regions>=<east> f<value>=s<1,0>"},
      {"points_test Unescape", R"(cpu,regions=eas\t value=1.0)",
       R"(m<cpu> t<regions>=<eas\t> f<value>=f:1)"},
      {"points_test Unescape", R"(cpu,regions=\\,\,\=east value=1.0)",
       R"(m<cpu> t<regions>=<\,,=east> f<value>=f:1)"},
      {"points_test Unescape", R"(cpu \a=1i)", R"(m<cpu> f<\a>=i:1)"},
      {"points_test Unescape", R"(cpu=load,equals\=foo=tag\=value value=1i)",
       "m<cpu=load> t<equals=foo>=<tag=value> f<value>=i:1"},
      {"points_test MissingTagKey", R"(cpu,host=serverA,\ =us-east value=1i)",
       "m<cpu> t<host>=<serverA> t< >=<us-east> f<value>=i:1"},
      {"points_test MissingFieldName", R"(cpu,host=serverA,region=us-west a\ =123i)",
       "m<cpu> t<host>=<serverA> t<region>=<us-west> f<a >=i:123"},
      {"points_test WithTags", "cpu,host=serverA,region=us-east value=1.0 1000000000",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=f:1 @1000000000"},
      {"points_test StringField",
       R"(cpu,host=serverA,region=us-east value=1.0,str="foo",str2="bar" 1000000000)",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=f:1 f<str>=s<foo> f<str2>=s<bar> "
       "@1000000000"},
      {"points_test StringField", R"(cpu,host=serverA,region=us-east str="foo \" bar" 1000000000)",
       R"(m<cpu> t<host>=<serverA> t<region>=<us-east> f<str>=s<foo " bar> @1000000000)"},
      {"points_test StringWithSpaces",
       R"(cpu,host=serverA,region=us-east value=1.0,str="foo bar" 1000000000)",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=f:1 f<str>=s<foo bar> @1000000000"},
      {"points_test StringWithNewline",
       "cpu,host=serverA,region=us-east value=1.0,str=\"foo\nbar\" 1000000000",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=f:1 f<str>=s<foo\nbar> @1000000000"},
      {"points_test StringWithCommas",
       R"(cpu,host=serverA,region=us-east value=1.0,str="foo\,bar" 1000000000)",
       R"(m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=f:1 f<str>=s<foo\,bar> @1000000000)"},
      {"points_test StringWithCommas",
       R"(cpu,host=serverA,region=us-east value=1.0,str="foo,bar" 1000000000)",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=f:1 f<str>=s<foo,bar> @1000000000"},
      {"points_test StringWithCommas",
       R"(cpu,host=serverA,region=us-east str="foo\\",str2="bar" 1000000000)",
       R"(m<cpu> t<host>=<serverA> t<region>=<us-east> f<str>=s<foo\> f<str2>=s<bar> @1000000000)"},
      {"points_test QuotedMeasurement", R"("cpu",host=serverA,region=us-east value=1.0 1000000000)",
       R"(m<"cpu"> t<host>=<serverA> t<region>=<us-east> f<value>=f:1 @1000000000)"},
      {"points_test QuotedTags", R"(cpu,"host"="serverA",region=us-east value=1.0 1000000000)",
       R"(m<cpu> t<"host">=<"serverA"> t<region>=<us-east> f<value>=f:1 @1000000000)"},
      {"points_test EscapedStringsAndCommas",
       R"(cpu,host=serverA,region=us-east value="{Hello\"{,}\" World}" 1000000000)",
       R"(m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=s<{Hello"{,}" World}> @1000000000)"},
      {"points_test EscapedStringsAndCommas",
       R"(cpu,host=serverA,region=us-east value="{Hello\"{\,}\" World}" 1000000000)",
       R"(m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=s<{Hello"{\,}" World}> @1000000000)"},
      {"points_test StringWithEquals",
       R"(cpu,host=serverA,region=us-east str="foo=bar",value=1.0 1000000000)",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<str>=s<foo=bar> f<value>=f:1 @1000000000"},
      {"points_test StringWithBackslash", R"(cpu value="test\\\"" 1000000000)",
       R"(m<cpu> f<value>=s<test\"> @1000000000)"},
      {"points_test StringWithBackslash", R"(cpu value="test\\" 1000000000)",
       R"(m<cpu> f<value>=s<test\> @1000000000)"},
      {"points_test StringWithBackslash", R"(cpu value="test\"" 1000000000)",
       R"(m<cpu> f<value>=s<test"> @1000000000)"},
      {"points_test BoolField",
       "cpu,host=serverA,region=us-east true=true,t=t,T=T,TRUE=TRUE,True=True,false=false,f=f,"
       "F=F,FALSE=FALSE,False=False 1000000000",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<true>=b:true f<t>=b:true f<T>=b:true "
       "f<TRUE>=b:true f<True>=b:true f<false>=b:false f<f>=b:false f<F>=b:false "
       "f<FALSE>=b:false f<False>=b:false @1000000000"},
      {"points_test UnicodeString", R"(cpu,host=serverA,region=us-east value="wè" 1000000000)",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<value>=s<wè> @1000000000"},
      {"points_test NegativeTimestamp", "cpu value=1 -1", "m<cpu> f<value>=f:1 @-1"},
      {"points_test MaxTimestamp", "cpu value=1 9223372036854775806",
       "m<cpu> f<value>=f:1 @9223372036854775806"},
      {"points_test MinTimestamp", "cpu value=1 -9223372036854775806",
       "m<cpu> f<value>=f:1 @-9223372036854775806"},
      {"int64 range (InfluxDB's ns range is the caller's)", "cpu value=1 9223372036854775807",
       "m<cpu> f<value>=f:1 @9223372036854775807"},
      {"int64 range", "cpu value=1 -9223372036854775808",
       "m<cpu> f<value>=f:1 @-9223372036854775808"},
      {"points_test MaxInt64", "cpu value=9223372036854775807i",
       "m<cpu> f<value>=i:9223372036854775807"},
      {"points_test MaxInt64: leading zeros", "cpu value=0009223372036854775807i",
       "m<cpu> f<value>=i:9223372036854775807"},
      {"points_test MinInt64", "cpu value=-9223372036854775808i",
       "m<cpu> f<value>=i:-9223372036854775808"},
      {"points_test MinInt64: leading zeros", "cpu value=-0009223372036854775808i",
       "m<cpu> f<value>=i:-9223372036854775808"},
      {"points_test MaxUint64", "cpu value=18446744073709551615u",
       "m<cpu> f<value>=u:18446744073709551615"},
      {"points_test MaxUint64: leading zeros", "cpu value=00018446744073709551615u",
       "m<cpu> f<value>=u:18446744073709551615"},
      {"points_test MinUint64", "cpu value=0u", "m<cpu> f<value>=u:0"},
      {"points_test MinUint64: leading zeros", "cpu value=0000u", "m<cpu> f<value>=u:0"},
      {"points_test Integer", "cpu value=1i", "m<cpu> f<value>=i:1"},
      {"points_test NegativeInteger", "cpu value=-1i", "m<cpu> f<value>=i:-1"},
      {"points_test NegativeFloat", "cpu value=-1.0", "m<cpu> f<value>=f:-1"},
      {"points_test FloatNoLeadingDigit", "cpu value=.1", "m<cpu> f<value>=f:0.1"},
      {"points_test FloatScientific", "cpu value=1.0e4", "m<cpu> f<value>=f:10000"},
      {"points_test FloatScientific", "cpu value=1e4", "m<cpu> f<value>=f:10000"},
      {"points_test FloatScientificUpper", "cpu value=1.0E4", "m<cpu> f<value>=f:10000"},
      {"points_test FloatScientificUpper", "cpu value=1E4", "m<cpu> f<value>=f:10000"},
      {"points_test FloatScientificDecimal", "cpu value=1.0e-4", "m<cpu> f<value>=f:1e-04"},
      {"points_test FloatNegativeScientific", "cpu value=-1.0e-4", "m<cpu> f<value>=f:-1e-04"},
      {"points_test IntsFloats",
       "cpu,host=serverA,region=us-east int=10i,float=11.0,float2=12.1 1000000000",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<int>=i:10 f<float>=f:11 f<float2>=f:12.1 "
       "@1000000000"},
      {"points_test KeyUnsorted: tags stay in input order", "cpu,last=1,first=2 value=1i",
       "m<cpu> t<last>=<1> t<first>=<2> f<value>=i:1"},
      {"points_test QuotesInFieldKey", R"(cpu "a=1)", R"(m<cpu> f<"a>=f:1)"},
      {"points_test QuotesInTags", R"(t159,label=hey\ "ya a=1i,value=0i)",
       R"(m<t159> t<label>=<hey "ya> f<a>=i:1 f<value>=i:0)"},
      {"points_test FieldIterator", "m v=42i,f=42 36", "m<m> f<v>=i:42 f<f>=f:42 @36"},
      {"points_test ToString",
       R"(cpu,host=serverA,region=us-east bool=false,float=11,float2=12.123,int=10i,str="string val" 1000000000)",
       "m<cpu> t<host>=<serverA> t<region>=<us-east> f<bool>=b:false f<float>=f:11 "
       "f<float2>=f:12.123 f<int>=i:10 f<str>=s<string val> @1000000000"},

      // --- Further edges of the same rules.
      {"float forms", "m a=5.,b=-.5,c=-0,d=0.000,e=1e-3,f=-1.5E+10,g=007",
       "m<m> f<a>=f:5 f<b>=f:-0.5 f<c>=f:-0 f<d>=f:0 f<e>=f:0.001 f<f>=f:-1.5e+10 f<g>=f:7"},
      {"float: underflow reads as 0 (Go's ParseFloat)",
       "m a=1e-400,b=-1e-400,c=0.0000e-99999999999999999999", "m<m> f<a>=f:0 f<b>=f:-0 f<c>=f:0"},
      {"float: subnormal", "m a=4.9e-324", "m<m> f<a>=f:5e-324"},
      {"float: largest", "m a=1.7976931348623157e308", "m<m> f<a>=f:1.7976931348623157e+308"},
      {"duplicate field: last value wins, first position (InfluxDB's field map)",
       "m a=1,b=2i,a=\"x\",c=t,b=3u", "m<m> f<a>=s<x> f<b>=u:3 f<c>=b:true"},
      {"trailing CRLF", "cpu value=1 5\r\n", "m<cpu> f<value>=f:1 @5"},
      {"trailing CR, no timestamp", "cpu value=\"a\"\r", "m<cpu> f<value>=s<a>"},
      {"leading tab and NUL skipped", std::string("\t\0cpu value=1", 13), "m<cpu> f<value>=f:1"},
      {"tab and NUL between sections", std::string("cpu\t value=1 \t\0 7", 17),
       "m<cpu\t> f<value>=f:1 @7"},
      {"tab inside a name is a byte", "c\tpu,t\tk=v\tv f\tk=1",
       "m<c\tpu> t<t\tk>=<v\tv> f<f\tk>=f:1"},
      {"trailing spaces, no timestamp", "cpu value=1   ", "m<cpu> f<value>=f:1"},
      {"'#' after the start is a byte", "c#pu,#=# #=1", "m<c#pu> t<#>=<#> f<#>=f:1"},
      {"backslash at end of string value is escaped by the one before", R"(m s="\\")",
       R"(m<m> f<s>=s<\>)"},
      {"empty string value", R"(m s="")", "m<m> f<s>=s<>"},
      {"string keeps other escapes", R"(m s="a\tb\n\,")", R"(m<m> f<s>=s<a\tb\n\,>)"},
      {"field key: backslash before other bytes is literal", R"(m a\b\\c=1)",
       R"(m<m> f<a\b\\c>=f:1)"},
      {"measurement keeps \\= and \\\"", R"(m\=\"x v=1)", R"(m<m\=\"x> f<v>=f:1)"},
      {"negative zero timestamp", "m v=1 -0", "m<m> f<v>=f:1 @0"},
  }));
  CAPTURE(source, text);
  CHECK(outcome(text) == "ok " + expected);
}

TEST_CASE("line protocol parser: comments and blank lines are skipped", "[line_protocol_parser]") {
  const auto [source, text] = GENERATE(table<const char*, std::string>({
      {"points_test NoValue", ""},
      {"points_test WhitespaceValue", " "},
      {"points_test PrecisionComments", "# comment only"},
      {"points_test PrecisionComments", "# a point is below"},
      {"points_test PrecisionComments: indented", "\t# a point is below"},
      {"points_test BlankLine", "\n"},
      {"reference: '#' starts a comment", "#cpu value=1 1"},
      {"CRLF blank line", "\r\n"},
      {"blanks only", std::string(" \t\0 \r", 5)},
  }));
  CAPTURE(source, text);
  CHECK(outcome(text) == "skip");
}

TEST_CASE("line protocol parser: errors say what and where", "[line_protocol_parser]") {
  using E = ParseError;
  const auto [source, text, reason,
              column] = GENERATE(table<const char*, std::string, ParseError, std::size_t>({
      {"points_test NoFields", "cpu_load_short,host=server01,region=us-west", E::missing_fields,
       44},
      {"points_test NoFields", "cpu", E::missing_fields, 4},
      {"points_test NoFields: InfluxDB says missing fields; '=' opens no tag value here",
       "cpu,host==", E::invalid_tag_value, 10},
      {"points_test NoFields", "=", E::missing_fields, 2},
      {"no fields after the space", "cpu ", E::missing_fields, 5},
      {"no fields after the tags", "cpu,a=b   ", E::missing_fields, 11},
      {"points_test MissingQuote", R"(cpu,host=serverA value="test)", E::unterminated_string, 24},
      {"points_test MissingQuote: InfluxDB says unbalanced quotes",
       R"(cpu,host=serverA value="test"")", E::invalid_string, 30},
      {"escaped quote does not close", R"(m s="a\")", E::unterminated_string, 5},
      {"points_test MissingTagKey", "cpu, value=1", E::missing_tag_key, 5},
      {"points_test MissingTagKey", "cpu,", E::missing_tag_key, 5},
      {"points_test MissingTagKey", "cpu,,,", E::missing_tag_key, 5},
      {"points_test MissingTagKey", "cpu,host=serverA,=us-east value=1i", E::missing_tag_key, 18},
      {"points_test MissingTagKey", R"(cpu,host=serverAa\,,=us-east value=1i)", E::missing_tag_key,
       21},
      {"points_test MissingTagKey", R"(cpu,host=serverA\,,=us-east value=1i)", E::missing_tag_key,
       20},
      {"points_test MissingTagKey", "cpu, =serverA value=1i", E::missing_tag_key, 5},
      {"points_test MissingTagValue", "cpu,host", E::missing_tag_value, 9},
      {"points_test MissingTagValue", "cpu,host,", E::missing_tag_value, 9},
      {"points_test MissingTagValue", "cpu,host=", E::missing_tag_value, 10},
      {"points_test MissingTagValue", "cpu,host value=1i", E::missing_tag_value, 9},
      {"points_test MissingTagValue", "cpu,host=serverA,region value=1i", E::missing_tag_value, 24},
      {"points_test MissingTagValue", "cpu,host=serverA,region= value=1i", E::missing_tag_value,
       25},
      {"points_test MissingTagValue", "cpu,host=serverA,region=,zone=us-west value=1i",
       E::missing_tag_value, 25},
      {"points_test InvalidTagFormat", "cpu,host=f=o,", E::invalid_tag_value, 11},
      {"points_test InvalidTagFormat", R"(cpu,host=f\==o,)", E::invalid_tag_value, 13},
      {"points_test WithDuplicateTags", "cpu,host=serverA,host=serverB value=1i 1000000000",
       E::duplicate_tag, 18},
      {"points_test WithDuplicateTags", "cpu,b=2,b=1,c=3 value=1i 1000000000", E::duplicate_tag, 9},
      {"points_test WithDuplicateTags", "cpu,b=2,c=3,b=1 value=1i 1000000000", E::duplicate_tag,
       13},
      {"duplicate tag after unescaping", R"(cpu,a\ b=1,a\\ b=2 v=1)", E::none, 0},
      {"points_test MissingFieldName", "cpu,host=serverA,region=us-west =", E::missing_field_key,
       33},
      {"points_test MissingFieldName", "cpu,host=serverA,region=us-west =123i",
       E::missing_field_key, 33},
      {"points_test MissingFieldName", "cpu,host=serverA,region=us-west value=123i,=456i",
       E::missing_field_key, 44},
      {"trailing comma after fields", "cpu a=1,", E::missing_field_key, 9},
      {"comma and space after fields", "cpu a=1, b=2", E::missing_field_key, 9},
      {"empty field between commas", "cpu a=1,,b=2", E::missing_field_key, 9},
      {"points_test MissingFieldValue",
       "cpu,host=serverA,region=us-west value=", E::missing_field_value, 39},
      {"points_test MissingFieldValue", "cpu,host=serverA,region=us-west value= 1000000000i",
       E::missing_field_value, 39},
      {"points_test MissingFieldValue", "cpu,host=serverA,region=us-west value=,value2=1i",
       E::missing_field_value, 39},
      {"points_test MissingFieldValue", "cpu,host=server01,region=us-west 1434055562000000000i",
       E::missing_field_value, 54},
      {"points_test MissingFieldValue", "cpu,host=server01,region=us-west value=1i,b",
       E::missing_field_value, 44},
      {"points_test MissingFieldValue", R"(m f="blah"=123,r 1531703600000000000)",
       E::invalid_string, 11},
      {"points_test BadNumber", "cpu v=- ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v=-i ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v=-. ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v=. ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v=1.0i ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v=1ii ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v=1a ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v=-e-e-e ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v=42+3 ", E::invalid_number, 7},
      {"points_test BadNumber", "cpu v= ", E::missing_field_value, 7},
      {"points_test BadNumber", "cpu v=-123u", E::invalid_number, 7},
      {"points_test MaxInt64", "cpu,host=serverA,region=us-west value=9223372036854775808i",
       E::number_out_of_range, 39},
      {"points_test MinInt64", "cpu,host=serverA,region=us-west value=-9223372036854775809i",
       E::number_out_of_range, 39},
      {"points_test MaxUint64", "cpu,host=serverA,region=us-west value=18446744073709551616u",
       E::number_out_of_range, 39},
      {"points_test MinUint64", "cpu,host=serverA,region=us-west value=--1u", E::invalid_number,
       39},
      {"points_test NumberNonNumeric", "cpu,host=serverA,region=us-west value=.1a",
       E::invalid_number, 39},
      {"points_test NegativeWrongPlace", "cpu,host=serverA,region=us-west value=0.-1",
       E::invalid_number, 39},
      {"points_test OnlyNegativeSign", "cpu,host=serverA,region=us-west value=-", E::invalid_number,
       39},
      {"points_test FloatMultipleDecimals", "cpu,host=serverA,region=us-west value=1.1.1",
       E::invalid_number, 39},
      {"points_test BooleanInvalid", "cpu,host=serverA,region=us-west value=a", E::invalid_boolean,
       39},
      {"points_test ScientificIntInvalid", "cpu,host=serverA,region=us-west value=9ie10",
       E::invalid_number, 39},
      {"points_test ScientificIntInvalid", "cpu,host=serverA,region=us-west value=9e10i",
       E::invalid_number, 39},
      {"points_test NaN", "cpu value=NaN 1000000000", E::invalid_number, 11},
      {"points_test NaN", "cpu value=nAn 1000000000", E::invalid_number, 11},
      {"points_test NaN", "cpu value=NaN", E::invalid_number, 11},
      {"no inf (a boolean spelling to InfluxDB)", "cpu value=inf", E::invalid_boolean, 11},
      {"no -inf", "cpu value=-inf", E::invalid_number, 11},
      {"no -nan", "cpu value=-nan", E::invalid_number, 11},
      {"no infinity", "cpu value=-infinity", E::invalid_number, 11},
      {"no hex float", "cpu value=0x1p3", E::invalid_number, 11},
      {"no '+' sign", "cpu value=+1", E::invalid_boolean, 11},
      {"float overflow", "cpu value=1e309", E::number_out_of_range, 11},
      {"float overflow, huge exponent", "cpu value=-1e99999999999999999999", E::number_out_of_range,
       11},
      {"no exponent digits", "cpu value=1e", E::invalid_number, 11},
      {"boolean spellings", "cpu value=tRUE", E::invalid_boolean, 11},
      {"boolean spellings", "cpu value=falsey", E::invalid_boolean, 11},
      {"boolean spellings", "cpu a=t,b=yes", E::invalid_boolean, 11},
      {"points_test InvalidTimestamp", "cpu value=1 9223372036854775808", E::timestamp_out_of_range,
       13},
      {"points_test InvalidTimestamp", "cpu value=1 -92233720368547758078",
       E::timestamp_out_of_range, 13},
      {"points_test InvalidTimestamp", "cpu value=1 -", E::invalid_timestamp, 13},
      {"points_test InvalidTimestamp", "cpu value=1 -/", E::invalid_timestamp, 13},
      {"points_test InvalidTimestamp", "cpu value=1 -1?", E::invalid_timestamp, 13},
      {"points_test InvalidTimestamp", "cpu value=1 1-", E::invalid_timestamp, 13},
      {"points_test InvalidTimestamp", "cpu value=1 9223372036854775807 12", E::trailing_characters,
       33},
      {"points_test TrailingSlash", R"(a v=1 0\)", E::invalid_timestamp, 7},
      {"timestamp with '+'", "cpu value=1 +5", E::invalid_timestamp, 13},
      {"timestamp then tab", "cpu value=1 5\t", E::invalid_timestamp, 13},
      {"reference: double-quoted timestamp", R"(mymeas value=9 "1466625759000000000")",
       E::invalid_timestamp, 16},
      {"tutorial: double-quoted timestamp",
       R"(weather,location=us-midwest temperature=82 "1465839830100400200")", E::invalid_timestamp,
       44},
      {"tutorial: single-quoted string", "weather,location=us-midwest temperature='too warm'",
       E::invalid_boolean, 41},
      {"points_test QuotesInFieldKey", R"(cpu "\, '= "\ v=1.0)", E::missing_field_value, 8},
      {"missing measurement", ",tag=a v=1", E::missing_measurement, 1},
      {"missing measurement after blanks", "  ,tag=a v=1", E::missing_measurement, 3},
      {"line break in measurement", "cpu\nx v=1", E::line_break, 4},
      {"line break in tag value", "cpu,a=b\nc v=1", E::line_break, 8},
      {"line break in field key", "cpu a\nb=1", E::line_break, 6},
      {"line break in a value", "cpu a=1\nb=2", E::invalid_number, 7},
      {"string followed by junk", R"(cpu a="x"y)", E::invalid_string, 10},
      {"CR inside is not stripped", "cpu value=1 5\r \r", E::invalid_timestamp, 13},
  }));
  CAPTURE(source, text);
  if (reason == ParseError::none) {
    CHECK(outcome(text).rfind("ok ", 0) == 0);
  } else {
    CHECK(outcome(text) == error(reason, column));
  }
}

TEST_CASE("line protocol parser: float range at the limits", "[line_protocol_parser]") {
  // points_test MaxFloat64/MinFloat64: math.MaxFloat64 written out in full ('f', 1 digit).
  char buffer[400];
  const auto end =
      std::to_chars(buffer, buffer + sizeof buffer, DBL_MAX, std::chars_format::fixed, 1);
  const std::string max_text(buffer, end.ptr);
  REQUIRE(max_text.size() == 311);
  CHECK(outcome("cpu value=" + max_text) == "ok m<cpu> f<value>=f:1.7976931348623157e+308");
  CHECK(outcome("cpu value=-" + max_text) == "ok m<cpu> f<value>=f:-1.7976931348623157e+308");
  CHECK(outcome("cpu value=0000" + max_text) == "ok m<cpu> f<value>=f:1.7976931348623157e+308");
  CHECK(outcome("cpu value=-0000000" + max_text) ==
        "ok m<cpu> f<value>=f:-1.7976931348623157e+308");
  CHECK(outcome("cpu value=1" + max_text) == error(ParseError::number_out_of_range, 11));
  CHECK(outcome("cpu value=-1" + max_text) == error(ParseError::number_out_of_range, 11));
}

TEST_CASE("line protocol parser: InfluxDB's series key limit", "[line_protocol_parser]") {
  // points_test NewPointsRejectsMaxKey: measurement + 4 + field key <= 65535 bytes.
  std::string key(65535 - 5 - 4, 'a');
  CHECK(outcome(key + " value=1,ok=2.0").rfind("ok ", 0) == 0);
  key += 'a';
  CHECK(outcome(key + " value=1,ok=2.0") == error(ParseError::key_too_long, key.size() + 2));
  // The measurement and tags alone.
  CHECK(outcome("m,t=" + std::string(65532, 'v') + " f=1") == error(ParseError::key_too_long, 1));
}

TEST_CASE("line protocol parser: many tags and fields", "[line_protocol_parser]") {
  // points_test WithVariousTags / NewPointLargeNumberOfTags: 1000 tags parse.
  std::string line = "m";
  for (int i = 0; i < 1000; ++i) line += ",t" + std::to_string(i + 1) + "=x";
  LineProtocolParser parser;
  ParsedLine parsed;
  const std::string whole = line + " v=0";  // the views point into it: it must outlive them
  REQUIRE(parser.parse(whole, parsed).ok());
  CHECK(parsed.tags.size() == 1000);
  CHECK(parsed.tags[999].first == "t1000");

  SECTION("a repeat among many tags is found, at its second occurrence") {
    const std::string repeated = line + ",t500=y v=0";
    const ParseResult result = parser.parse(repeated, parsed);
    CHECK(result.error == ParseError::duplicate_tag);
    CHECK(result.column == repeated.find(",t500=y") + 2);
  }
  SECTION("the first repeat a reader meets is reported") {
    const std::string repeated = "m,t40=a,t2=a,t1=a" + line.substr(1) + " v=0";
    const ParseResult result = parser.parse(repeated, parsed);
    CHECK(result.error == ParseError::duplicate_tag);
    CHECK(result.column == repeated.find(",t1=x") + 2);
  }
  SECTION("repeated fields among many: last value, first position") {
    std::string fields;
    for (int i = 0; i < 40; ++i)
      fields += (i ? ",f" : "f") + std::to_string(i) + "=" + std::to_string(i) + "i";
    const std::string with_repeats = "m " + fields + ",f7=true,f3=\"s\",f7=-1i 5";
    REQUIRE(parser.parse(with_repeats, parsed).ok());
    REQUIRE(parsed.fields.size() == 40);
    for (int i = 0; i < 40; ++i) CHECK(parsed.fields[i].key == "f" + std::to_string(i));
    CHECK(parsed.fields[3].type == Type::string);
    CHECK(parsed.fields[3].s == "s");
    CHECK(parsed.fields[7].type == Type::integer);
    CHECK(parsed.fields[7].i == -1);
    CHECK(parsed.fields[39].i == 39);
  }
}

TEST_CASE("line protocol parser: views into the line, or into the parser's buffer",
          "[line_protocol_parser]") {
  LineProtocolParser parser;
  ParsedLine parsed;
  const auto inside = [](std::string_view part, const std::string& line) {
    return part.data() >= line.data() && part.data() + part.size() <= line.data() + line.size();
  };
  const std::string plain = R"(cpu,host=a b=1i,s="x" 1)";
  REQUIRE(parser.parse(plain, parsed).ok());
  CHECK(inside(parsed.measurement, plain));
  CHECK(inside(parsed.tags[0].second, plain));
  CHECK(inside(parsed.fields[1].s, plain));

  // Many escaped parts in one line: each view must survive the ones unescaped after it.
  std::string escaped = R"(c\ pu)";
  for (int i = 0; i < 50; ++i) escaped += ",k" + std::to_string(i) + R"(=v\,)" + std::to_string(i);
  escaped += R"( f\=1="a\"b",g=2 3)";
  REQUIRE(parser.parse(escaped, parsed).ok());
  CHECK(parsed.measurement == "c pu");
  CHECK(!inside(parsed.measurement, escaped));
  for (int i = 0; i < 50; ++i) CHECK(parsed.tags[i].second == "v," + std::to_string(i));
  CHECK(parsed.fields[0].key == "f=1");
  CHECK(parsed.fields[0].s == "a\"b");
  CHECK(inside(parsed.fields[1].key, escaped));

  // The same parser and ParsedLine, reused, give the same answers as fresh ones.
  for (const std::string& line : {plain, escaped, std::string(R"(m\ x v=1)"), plain}) {
    LineProtocolParser fresh;
    ParsedLine fresh_parsed;
    REQUIRE(fresh.parse(line, fresh_parsed).ok());
    REQUIRE(parser.parse(line, parsed).ok());
    CHECK(render(parsed) == render(fresh_parsed));
    CHECK(parsed == fresh_parsed);
  }
}

TEST_CASE("line protocol parser: reads back what sink::append_point writes",
          "[line_protocol_parser]") {
  using tumbled::sink::append_point;
  using tumbled::sink::Field;
  using tumbled::sink::name_problem;
  using tumbled::sink::NameRole;

  const auto seed = GENERATE(range(1, 301));
  std::mt19937_64 random(static_cast<std::uint64_t>(seed));
  const auto pick = [&random](std::size_t n) {
    return static_cast<std::size_t>(std::uniform_int_distribution<std::size_t>(0, n - 1)(random));
  };
  // Bytes that line protocol treats specially, with plain ones and a 2-byte UTF-8 character.
  const std::vector<std::string> pieces{"a",  "Z", "0",  "_", ",", "=", " ", "\\",
                                        "\"", "#", "\t", "é", "i", "-", "."};
  const auto name = [&](NameRole role) {
    for (;;) {
      std::string text;
      const std::size_t length = 1 + pick(6);
      for (std::size_t i = 0; i < length; ++i) text += pieces[pick(pieces.size())];
      if (!name_problem(text, role)) return text;
    }
  };

  const std::string measurement = name(NameRole::measurement);
  std::map<std::string, std::string> tags;
  for (std::size_t i = pick(4); i > 0; --i)
    tags[name(NameRole::tag_key)] = name(NameRole::tag_value);
  std::vector<Field> fields;
  std::vector<std::string> seen;
  for (std::size_t i = 1 + pick(4); i > 0; --i) {
    std::string key = name(NameRole::field_key);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    switch (pick(3)) {
      case 0: {
        const std::int64_t edges[] = {0, -1, std::numeric_limits<std::int64_t>::min(),
                                      std::numeric_limits<std::int64_t>::max(),
                                      static_cast<std::int64_t>(random())};
        fields.push_back({key, edges[pick(5)]});
        break;
      }
      case 1: {
        const auto bits = random();
        double value = 0;
        std::memcpy(&value, &bits, sizeof value);
        fields.push_back(
            {key, pick(2) ? value : static_cast<double>(static_cast<std::int32_t>(bits))});
        break;
      }
      default: fields.push_back({key, pick(2) == 1}); break;
    }
  }
  const auto timestamp = static_cast<std::int64_t>(random());

  std::string line;
  append_point(line, measurement, tags, fields, timestamp);
  CAPTURE(line);
  LineProtocolParser parser;
  ParsedLine parsed;
  const ParseResult result = parser.parse(line, parsed);
  REQUIRE(result.ok());

  CHECK(parsed.measurement == measurement);
  REQUIRE(parsed.tags.size() == tags.size());
  std::size_t t = 0;
  for (const auto& [key, value] : tags) {
    CHECK(parsed.tags[t].first == key);
    CHECK(parsed.tags[t].second == value);
    ++t;
  }
  REQUIRE(parsed.fields.size() == fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const ParsedField& got = parsed.fields[i];
    CHECK(got.key == fields[i].name);
    if (const auto* integer = std::get_if<std::int64_t>(&fields[i].value)) {
      CHECK(got.type == Type::integer);
      CHECK(got.i == *integer);
    } else if (const auto* real = std::get_if<double>(&fields[i].value)) {
      const double expected = std::isfinite(*real) ? *real : 0.0;  // append_point's substitute
      CHECK(got.type == Type::floating);
      CHECK(got.f == expected);
      CHECK(std::signbit(got.f) == std::signbit(expected));
    } else {
      CHECK(got.type == Type::boolean);
      CHECK(got.b == std::get<bool>(fields[i].value));
    }
  }
  CHECK(parsed.timestamp == timestamp);
}

TEST_CASE("line protocol parser: numbers read exactly as from_chars reads them",
          "[line_protocol_parser]") {
  // The parser sums short integers and short decimals itself; every value must still be the
  // one std::from_chars gives (correctly rounded), and out-of-range ones must stay errors.
  std::mt19937_64 random(20240601);
  const auto digits = [&random](std::size_t count) {
    std::string text;
    for (std::size_t i = 0; i < count; ++i) text += static_cast<char>('0' + random() % 10);
    return text;
  };
  LineProtocolParser parser;
  ParsedLine parsed;
  for (int n = 0; n < 20000; ++n) {
    const std::string sign = random() % 2 ? "-" : "";
    const std::string whole = digits(random() % 21);
    const std::string fraction = random() % 2 ? "." + digits(random() % 12) : "";
    const std::string number = sign + whole + fraction;
    CAPTURE(number);

    double expected_float = 0;
    const auto f = std::from_chars(number.data(), number.data() + number.size(), expected_float);
    const ParseResult float_result = parser.parse("m f=" + number, parsed);
    REQUIRE(float_result.ok() == (f.ec == std::errc{} && f.ptr == number.data() + number.size()));
    if (float_result.ok()) {
      CHECK(parsed.fields[0].f == expected_float);
      CHECK(std::signbit(parsed.fields[0].f) == std::signbit(expected_float));
    }

    const std::string integer = sign + whole;
    std::int64_t expected_int = 0;
    const auto i = std::from_chars(integer.data(), integer.data() + integer.size(), expected_int);
    const ParseResult int_result = parser.parse("m i=" + integer + "i", parsed);
    const ParseResult time_result = parser.parse("m i=1 " + integer, parsed);
    if (i.ec == std::errc{} && i.ptr == integer.data() + integer.size()) {
      REQUIRE(int_result.ok());
      REQUIRE(time_result.ok());
      CHECK(parsed.timestamp == expected_int);
      REQUIRE(parser.parse("m i=" + integer + "i", parsed).ok());
      CHECK(parsed.fields[0].i == expected_int);
    } else if (i.ec == std::errc::result_out_of_range) {
      CHECK(int_result.error == ParseError::number_out_of_range);
      CHECK(time_result.error == ParseError::timestamp_out_of_range);
    } else if (!integer.empty()) {
      CHECK(int_result.error == ParseError::invalid_number);
      CHECK(time_result.error == ParseError::invalid_timestamp);
    }
  }
}

TEST_CASE("line protocol parser: a non-digit anywhere in a long number is refused",
          "[line_protocol_parser]") {
  // Long numbers are read eight bytes at a time; every byte value at every position must still
  // be checked, in integers and timestamps alike.
  LineProtocolParser parser;
  ParsedLine parsed;
  const std::string digits = "1234567890123456789";
  for (std::size_t at = 1; at < digits.size(); ++at) {  // the first byte picks the type
    for (int byte = 0; byte < 256; ++byte) {
      if ((byte >= '0' && byte <= '9') || byte == ' ' || byte == ',' || byte == '\n' ||
          byte == '\r') {
        continue;
      }
      std::string number = digits;
      number[at] = static_cast<char>(byte);
      CAPTURE(at, byte);
      CHECK(parser.parse("m v=1 " + number, parsed).error == ParseError::invalid_timestamp);
      CHECK(parser.parse("m v=" + number + "i", parsed).error == ParseError::invalid_number);
    }
  }
}
