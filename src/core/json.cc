#include "core/json.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/utf8.h"

namespace ferry {
namespace {

std::string IntegerOutOfRange(const std::string& literal) {
  return "integer " + literal + " is out of range (" +
         std::to_string(std::numeric_limits<int64_t>::min()) + " to " +
         std::to_string(std::numeric_limits<int64_t>::max()) + "; send it as a string)";
}

// nlohmann's parser is iterative; its SAX interface lets this wrapper refuse too-deep nesting,
// out-of-range numbers and duplicate keys while the DOM is built, and say where.
class CheckedSax {
 public:
  CheckedSax(Json& out, int max_depth)
      : dom_(out, /*allow_exceptions=*/false), max_depth_(max_depth) {}

  bool null() { return Value() && dom_.null(); }
  bool boolean(bool v) { return Value() && dom_.boolean(v); }
  bool number_integer(Json::number_integer_t v) { return Value() && dom_.number_integer(v); }
  bool number_unsigned(Json::number_unsigned_t v) {
    // Integers are signed 64-bit wherever they go (Lua, a workflow's YAML inputs, the request
    // fields): one above INT64_MAX would become a double with other digits there.
    if (v > static_cast<Json::number_unsigned_t>(std::numeric_limits<int64_t>::max())) {
      Value();  // it is the next element, for the path
      return Refuse(IntegerOutOfRange(std::to_string(v)));
    }
    return Value() && dom_.number_unsigned(v);
  }
  bool number_float(Json::number_float_t v, const Json::string_t& s) {
    // An integer literal arrives here only when it does not fit in 64 bits: as a double it would
    // lose digits (18446744073709551617 -> 1.8446744073709552e+19) without anyone knowing.
    if (s.find_first_of(".eE") == Json::string_t::npos) {
      Value();  // it is the next element, for the path
      return Refuse(IntegerOutOfRange(s));
    }
    // A non-zero number nearer to zero than the least normal double would be kept as 0 (1e-400)
    // or as a subnormal, with fewer significant digits the nearer it is (5e-324 has one): refused,
    // as a number past the largest double is.
    const bool zero_digits =
        s.substr(0, s.find_first_of("eE")).find_first_of("123456789") == Json::string_t::npos;
    if (std::fabs(v) < std::numeric_limits<double>::min() && !zero_digits) {
      Value();  // it is the next element, for the path
      return Refuse("number " + s + " is out of range (nearer to zero than " +
                    DumpJson(Json(std::numeric_limits<double>::min())) +
                    ", below which a double keeps fewer digits; send 0 or a string)");
    }
    return Value() && dom_.number_float(v, s);
  }
  bool string(Json::string_t& v) { return Value() && dom_.string(v); }
  bool binary(Json::binary_t& v) { return Value() && dom_.binary(v); }

  bool start_object(std::size_t n) {
    if (!Value() || !Open(false)) return false;
    return dom_.start_object(n);
  }
  bool key(Json::string_t& k) {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      f.key = k;
      return Refuse("duplicate key \"" + k + "\"");
    }
    f.key = k;
    return dom_.key(k);
  }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (!Value() || !Open(true)) return false;
    return dom_.start_array(n);
  }
  bool end_array() {
    frames_.pop_back();
    return dom_.end_array();
  }

  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& e) {
    if (error_) return false;
    if (e.id == 406) {  // out_of_range.406: a number beyond double
      Value();          // it is the next element, for the path
      return Refuse("number " + token + " is out of range");
    }
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
    if (auto p = what.find("] ");
        what.rfind("[json.exception.", 0) == 0 && p != std::string::npos) {
      what = what.substr(p + 2);
    }
    error_ = "malformed JSON at byte " + std::to_string(position) + ": " + what;
    return false;
  }

  const std::optional<std::string>& error() const { return error_; }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;  // arrays: the next element's index
    std::string key;   // objects: the current key
    std::unordered_set<std::string> keys;
  };

  // A value starts: inside an array it takes the next index.
  bool Value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }

  bool Open(bool array) {
    if (static_cast<int>(frames_.size()) >= max_depth_) {
      return Refuse("nested deeper than the limit of " + std::to_string(max_depth_) + " levels");
    }
    frames_.push_back(Frame{array, 0, {}, {}});
    return true;
  }

  // "a.b[3].c" for the place being read; "" at the top. A deep place keeps its first and last
  // few steps: "a[0][0][0]...[0][0][0]".
  std::string Path() const {
    std::vector<std::string> steps;
    for (const Frame& f : frames_) {
      if (f.array) {
        if (f.index > 0) steps.push_back("[" + std::to_string(f.index - 1) + "]");
      } else if (!f.keys.empty()) {
        steps.push_back((steps.empty() ? "" : ".") + f.key);
      }
    }
    constexpr size_t kEnds = 4;
    std::string out;
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps.size() > 2 * kEnds && i >= kEnds && i < steps.size() - kEnds) {
        if (i == kEnds) out += "...";
        continue;
      }
      out += steps[i];
    }
    return out;
  }

  bool Refuse(const std::string& why) {
    const std::string where = Path();
    error_ = where.empty() ? why : where + ": " + why;
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  const int max_depth_;
  std::vector<Frame> frames_;
  std::optional<std::string> error_;
};

Result<Json> ParseJsonWithin(std::string_view text, int max_depth) {
  // The parser takes a raw NUL for the end of its input and would accept whatever follows it
  // unread; JSON has none (inside a string it is written \u0000).
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidArgument,
                "malformed JSON at byte " + std::to_string(nul + 1) +
                    ": a NUL byte (JSON allows it only escaped, as \\u0000 in a string)");
  }
  Json out;
  CheckedSax sax(out, max_depth);
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &sax);
  } catch (const Json::exception& e) {
    return Fail(ErrorCode::kInvalidArgument, std::string("malformed JSON: ") + e.what());
  }
  if (!ok || sax.error()) {
    return Fail(ErrorCode::kInvalidArgument, sax.error().value_or("malformed JSON"));
  }
  return out;
}

}  // namespace

Result<Json> ParseJson(std::string_view text) { return ParseJsonWithin(text, kMaxJsonDepth); }

Result<Json> ParseStoredJson(std::string_view text) {
  return ParseJsonWithin(text, kMaxStoredJsonDepth);
}

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

int JsonDepth(const Json& j) {
  int deepest = 0;
  std::vector<std::pair<const Json*, int>> todo{{&j, 0}};
  while (!todo.empty()) {
    auto [v, d] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const auto& child : *v) todo.emplace_back(&child, d + 1);
  }
  return deepest;
}

namespace {

std::optional<std::string> Unkept(const Json& v, const std::string& path) {
  const auto at = [&](const std::string& what) { return (path.empty() ? "" : path + ": ") + what; };
  switch (v.type()) {
    case Json::value_t::number_unsigned:
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return at(IntegerOutOfRange(std::to_string(v.get<uint64_t>())));
      }
      return std::nullopt;
    case Json::value_t::number_float:
      if (!std::isfinite(v.get<double>())) {
        return at("number " + std::string(std::isnan(v.get<double>()) ? "NaN" : "infinity") +
                  " has no JSON form");
      }
      return std::nullopt;
    case Json::value_t::string:
      if (auto bad = Utf8FirstInvalid(v.get_ref<const std::string&>())) {
        return at("string is not UTF-8 (byte " + std::to_string(*bad) + ")");
      }
      return std::nullopt;
    case Json::value_t::array:
      for (size_t i = 0; i < v.size(); ++i) {
        if (auto why = Unkept(v[i], path + "[" + std::to_string(i) + "]")) return why;
      }
      return std::nullopt;
    case Json::value_t::object:
      for (const auto& [key, item] : v.items()) {
        if (auto bad = Utf8FirstInvalid(key)) {
          return at("a key is not UTF-8 (byte " + std::to_string(*bad) + ")");
        }
        if (auto why = Unkept(item, path.empty() ? key : path + "." + key)) return why;
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<std::string> UnkeptJsonValue(const Json& value) { return Unkept(value, ""); }

}  // namespace ferry
