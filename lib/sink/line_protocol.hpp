// InfluxDB line protocol encoding: `measurement,tag=v field=1i 1700000000000`.
//
// Escaping follows InfluxDB 1.x: commas and spaces in measurements; commas, '=' and spaces in tag
// keys, tag values and field keys; field values are typed (int64 -> `1i`, double, bool). Names
// that line protocol cannot carry at all (empty, containing a newline, measurement starting with
// '#') are refused up front by name_problem(), which config validation calls. Pure code.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tumbled::sink {

using FieldValue = std::variant<std::int64_t, double, bool>;

struct Field {
  std::string name;
  FieldValue value;
};

enum class NameRole { measurement, tag_key, tag_value, field_key };

// Why `name` cannot be used in the given role, or nullopt if it can.
std::optional<std::string> name_problem(std::string_view name, NameRole role);

// Appends `text` escaped for `role` (measurement: ',' and ' '; tag keys, tag values and field
// keys: ',', '=' and ' ').
void append_escaped(std::string& out, std::string_view text, NameRole role);

// Appends one point, terminated by '\n', to `out`. Tags are written in key order (a std::map),
// which is the order InfluxDB recommends. `timestamp_ms` pairs with `precision=ms` on the write.
void append_point(std::string& out, std::string_view measurement,
                  const std::map<std::string, std::string>& tags, const std::vector<Field>& fields,
                  std::int64_t timestamp_ms);

}  // namespace tumbled::sink
