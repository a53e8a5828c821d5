// Internal to src/store: the one Store implementation, written against SqlConn so that SQLite and
// PostgreSQL share every query and every transition rule.
#pragma once

#include <memory>

#include "store/sql_conn.h"
#include "store/store.h"

namespace ferry::store_internal {

// Wraps an open connection; with options.migrate applies pending migrations first (serialized
// across processes), otherwise fails when the schema is behind.
Result<std::unique_ptr<Store>> MakeSqlStore(std::unique_ptr<SqlConn> conn,
                                            const StoreOptions& options);

}  // namespace ferry::store_internal
