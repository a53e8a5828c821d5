// A private PostgreSQL server for integration tests: initdb + postgres run as the `postgres` user
// (PostgreSQL refuses root) on a free loopback port, with its data directory in a TempDir.
// Password authentication (scram-sha-256) over TCP, so tests can check wrong-password handling;
// fsync off for speed. Stopped (fast shutdown) and removed on destruction.
//
// Thread-safety: construct and destroy on one thread; url() and CreateDatabase() may be called
// from any thread once constructed.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "harness.h"

namespace ferry::testing {

class PostgresServer {
 public:
  struct Options {
    std::string user = "ferry";  // the superuser initdb creates
    std::string password = "ferry-test-pw";
  };
  PostgresServer();
  explicit PostgresServer(Options options);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres, if any.
  static std::optional<std::string> BinDir();
  // Whether a server can be started here (binaries present, a `postgres` user exists).
  static bool Available();

  int port() const { return port_; }
  const Options& options() const { return options_; }
  // postgresql://user:password@127.0.0.1:port/db
  std::string url(const std::string& db = "postgres") const;
  // Creates a fresh database (a unique name when empty) and returns its URL.
  std::string CreateDatabase(const std::string& name = "");
  // Runs SQL through psql; returns its stdout (trimmed). Throws when psql fails.
  std::string Psql(const std::string& sql, const std::string& db = "postgres") const;

  void Start();
  // Fast shutdown (SIGINT to the postmaster), then waits for it to exit.
  void Stop();
  void Restart();

 private:
  // Starts the server on port_ and waits until it answers; false when it ended because the port
  // was taken (by another test process, between FreePort and the bind).
  bool Launch();

  Options options_;
  std::string bin_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Process> proc_;
  int port_ = 0;
};

}  // namespace ferry::testing
