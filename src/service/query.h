// Strict reading of query parameters, the FieldReader (core/json_fields.h) of a Query: each
// parameter is named once, the first problem is kept, and a parameter nobody asked for is an
// error (a typo such as ?satus=failed must not silently list everything).
//
//   QueryReader q(query);
//   filter.limit = q.Limit(50, kMaxPageLimit);
//   if (auto s = q.Text("status"); !s.empty()) ...
//   if (auto st = q.Finish(); !st) return Fail(st.error());
//
// Thread-safety: a QueryReader is used by one thread.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "core/result.h"
#include "service/service.h"

namespace ferry::service {

// The most items one page of a list holds (?limit=, and the CLI's --limit).
inline constexpr int kMaxPageLimit = 1000;

class QueryReader {
 public:
  // `query` must outlive the reader.
  explicit QueryReader(const Query& query) : query_(query) {}

  // The parameter's text; "" when absent. Given empty (`?status=`) it is a problem.
  std::string Text(std::string_view name);
  // ?limit: an integer from 1 to `max`, `default_value` when absent.
  int Limit(int default_value, int max);
  // Records a problem (the first one wins).
  void Problem(const std::string& message);
  // The first problem, or the first unknown parameter.
  Status Finish() const;

 private:
  const Query& query_;
  std::set<std::string, std::less<>> known_;
  std::optional<std::string> error_;
};

}  // namespace ferry::service
