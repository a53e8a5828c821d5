// A process that writes one row to a SQLite file (write_precedence_test.cc starts several): it
// opens a connection with write precedence (first, first-single) or without (other, single), says
// "ready" on stdout, then inserts KEY into table t, waiting for the file as long as it takes
// (30 s): in a write transaction of its own (first, other) or as one statement outside any
// (first-single, single).
//
//   sqlite_writer_child PATH first|first-single|other|single KEY
#include <chrono>
#include <cstdio>
#include <string>

#include "store/sqlite/sqlite_conn.h"

int main(int argc, char** argv) {
  const std::string mode = argc == 4 ? argv[2] : "";
  if (mode != "first" && mode != "first-single" && mode != "other" && mode != "single") {
    std::fprintf(stderr, "usage: %s PATH first|first-single|other|single KEY\n", argv[0]);
    return 2;
  }
  const bool precedence = mode.starts_with("first");
  const bool single = mode.ends_with("single");
  using ferry::store_internal::SqlParam;
  auto conn = ferry::store_internal::OpenSqliteConn(argv[1], std::chrono::seconds(30),
                                                    /*write_precedence=*/precedence);
  if (!conn) {
    std::fprintf(stderr, "open: %s\n", conn.error().message.c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  const ferry::store_internal::SqlStatement insert{"INSERT INTO t (k) VALUES ($1)",
                                                   {SqlParam::Text(argv[3])}};
  if (single) {
    if (auto r = (*conn)->Exec(insert.sql, insert.params); !r) {
      std::fprintf(stderr, "write: %s\n", r.error().message.c_str());
      return 1;
    }
  } else if (auto r = (*conn)->ExecInOwnCommit({insert}); !r) {
    std::fprintf(stderr, "write: %s\n", r.error().message.c_str());
    return 1;
  }
  return 0;
}
