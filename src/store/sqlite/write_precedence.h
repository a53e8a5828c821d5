// Write precedence across processes on one SQLite file. A worker running runs flat out keeps the
// file's one write lock busy, handing it from one of its transactions to the next within
// microseconds (write_turns.h, commit_groups.h), so a webhook's transaction in the server process
// waited for several of them: its answer's p99 was 8-11 ms under such a backlog
// (docs/benchmarks.md). A connection opened with precedence (StoreOptions::write_precedence:
// `ferry server start`) goes next instead.
//
// The wish travels in a lock file beside the database (PATH-precedence, PATH made canonical as
// SQLite does for its -wal file; flock, so it ends with the process that held it, however it
// ends). A connection with precedence holds it exclusively from the moment it wants the file
// until it has it. Every other connection checks it before it writes and each time it retries a
// taken lock, and waits while it is held: so a writer with precedence waits for the transaction
// that holds the file when it asks, and at most one more that began in the same instant. (Its
// connection also leaves the WAL's checkpoints to the others: sqlite_conn.cc.)
//
// A wish held for kMaxYield without a break (a server stopped while asking: SIGSTOP, a debugger)
// is waited for once per connection; after that the connection ignores it until it has seen it
// released, so a stuck server slows the others once, not at every write.
//
// Thread-safety: one per connection, NOT thread-safe. Each has its own descriptor (flock locks
// belong to the open file, so two connections of one process exclude each other too). On NFS,
// where flock becomes a per-process POSIX lock, precedence does not hold; SQLite's WAL mode needs
// a local file system anyway.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace ferry::store_internal {

class WritePrecedence {
 public:
  // The longest a writer without precedence waits for one with it before going on anyway.
  static constexpr std::chrono::milliseconds kMaxYield{1000};

  // The lock file of the database at `db_path`, created when missing with the database file's
  // permissions (so every user that can write the database can open it); read-only when it cannot
  // be opened for writing (flock needs no more). nullptr when it cannot be opened at all:
  // writers then take the file in whatever order they get it.
  static std::unique_ptr<WritePrecedence> Open(const std::string& db_path);
  ~WritePrecedence();
  WritePrecedence(const WritePrecedence&) = delete;
  WritePrecedence& operator=(const WritePrecedence&) = delete;

  // With precedence: holds the wish (waiting for other precedence holders until `until`); true
  // once held. Withdraw() ends it.
  bool Announce(std::chrono::steady_clock::time_point until);
  void Withdraw();

  // Without precedence: waits while another connection holds the wish, at most kMaxYield or
  // until `until`, whichever comes first (not at all for a wish it already waited kMaxYield for
  // and has not seen released since). True when it waited.
  bool YieldTo(std::chrono::steady_clock::time_point until);

  // Whether another connection holds the wish now (this one's own is not counted).
  bool Claimed() const;

 private:
  explicit WritePrecedence(int fd) : fd_(fd) {}

  const int fd_;
  bool held_ = false;      // this connection holds the wish
  bool ignoring_ = false;  // a wish outlasted kMaxYield and has not been seen released since
};

}  // namespace ferry::store_internal
