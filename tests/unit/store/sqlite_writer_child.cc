// A process that writes one row to a SQLite file (write_precedence_test.cc starts two): it opens
// a connection with write precedence or without, says "ready" on stdout, then inserts KEY into
// table t in a write transaction of its own, waiting for the file as long as it takes (30 s).
//
//   sqlite_writer_child PATH first|other KEY
#include <chrono>
#include <cstdio>
#include <string>

#include "store/sqlite/sqlite_conn.h"

int main(int argc, char** argv) {
  const std::string mode = argc == 4 ? argv[2] : "";
  if (mode != "first" && mode != "other") {
    std::fprintf(stderr, "usage: %s PATH first|other KEY\n", argv[0]);
    return 2;
  }
  using ferry::store_internal::SqlParam;
  auto conn = ferry::store_internal::OpenSqliteConn(argv[1], std::chrono::seconds(30),
                                                    /*write_precedence=*/mode == "first");
  if (!conn) {
    std::fprintf(stderr, "open: %s\n", conn.error().message.c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  auto r = (*conn)->ExecInOwnCommit({{"INSERT INTO t (k) VALUES ($1)", {SqlParam::Text(argv[3])}}});
  if (!r) {
    std::fprintf(stderr, "write: %s\n", r.error().message.c_str());
    return 1;
  }
  return 0;
}
