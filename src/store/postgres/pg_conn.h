// The PostgreSQL connection behind the Store (the only place that includes libpq is the .cc).
// Parameterized statements only, prepared once per connection and cached. A broken connection
// (server restart, network cut) fails the call that met it with kUnavailable and is reset, so
// the next call works again once the server is back.
//
// Thread-safety: one connection, NOT thread-safe; open one per thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/result.h"
#include "store/sql_conn.h"

namespace ferry::store_internal {

// Connects to a libpq URL ("postgresql://user:pass@host:port/db?..."). kUnavailable when the
// server cannot be reached, kUnauthenticated when it rejects the credentials.
Result<std::unique_ptr<SqlConn>> OpenPgConn(const std::string& url,
                                            std::chrono::milliseconds connect_timeout,
                                            std::chrono::milliseconds statement_timeout);

}  // namespace ferry::store_internal
