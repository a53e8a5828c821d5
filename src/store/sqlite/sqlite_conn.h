// The SQLite connection behind the Store (the only place that includes sqlite3.h is the .cc).
// One file in WAL mode with a busy timeout, foreign keys on and synchronous=NORMAL, so a server,
// a worker and a scheduler process can share it on one host.
//
// Thread-safety: one connection, NOT thread-safe; open one per thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/result.h"
#include "store/sql_conn.h"

namespace ferry::store_internal {

// Opens (creating if needed) the database file at `path` and sets its pragmas. kUnavailable when
// the file cannot be opened or stays locked past busy_timeout. `write_precedence`: this
// connection's write transactions go before those of connections without it, in any process,
// when both wait for the file (write_precedence.h).
Result<std::unique_ptr<SqlConn>> OpenSqliteConn(const std::string& path,
                                                std::chrono::milliseconds busy_timeout,
                                                bool write_precedence = false);

}  // namespace ferry::store_internal
