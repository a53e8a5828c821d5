#include "postgres.h"

#include <pwd.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace ferry::testing {
namespace fs = std::filesystem;

namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::optional<std::string> PostgresServer::BinDir() {
  std::error_code ec;
  std::optional<std::string> best;
  int best_version = -1;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "postgres")) continue;
    int version = std::atoi(entry.path().filename().c_str());
    if (version > best_version) {
      best_version = version;
      best = bin.string();
    }
  }
  return best;
}

bool PostgresServer::Available() {
  return BinDir().has_value() && ::getpwnam("postgres") != nullptr;
}

PostgresServer::PostgresServer() : PostgresServer(Options{}) {}

PostgresServer::PostgresServer(Options options)
    : options_(std::move(options)), dir_(std::make_unique<TempDir>()), port_(FreePort()) {
  auto bin = BinDir();
  if (!bin) throw std::runtime_error("no PostgreSQL binaries under /usr/lib/postgresql/*/bin");
  bin_ = *bin;
  fs::path pwfile = dir_->path() / "pwfile";
  {
    std::ofstream out(pwfile);
    out << options_.password << "\n";
  }
  fs::permissions(pwfile, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                              fs::perms::others_read);
  // TempDir is world-writable, so the `postgres` user can create the data directory in it;
  // initdb makes it 0700 and owned by postgres, as the server requires.
  auto r = RunCommand(
      {"runuser", "-u", "postgres", "--", bin_ + "/initdb", "-D", (dir_->path() / "data").string(),
       "-U", options_.user, "--pwfile=" + pwfile.string(), "--auth-local=trust",
       "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
      // Generous: on a starved machine initdb took over a minute (a stress round); ctest's own
      // per-test timeout still bounds the whole test.
      std::chrono::seconds(180));
  if (r.exit_code != 0) {
    throw std::runtime_error("initdb failed (" + std::to_string(r.exit_code) + "): " + r.out +
                             r.err);
  }
  // A port FreePort found free may be taken by another test process before the server binds it
  // (they run in parallel): then another port, a few times.
  for (int tries = 1; !Launch(); ++tries) {
    if (tries == kPortTries) throw std::runtime_error("postgres: no free port that held");
    port_ = FreePort();
  }
}

PostgresServer::~PostgresServer() {
  try {
    Stop();
  } catch (...) {
    // A destructor must not throw; the Process destructor kills what is left.
  }
}

std::string PostgresServer::url(const std::string& db) const {
  return "postgresql://" + options_.user + ":" + options_.password +
         "@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

bool PostgresServer::Launch() {
  std::string data = (dir_->path() / "data").string();
  proc_ = std::make_unique<Process>(Process::Options{
      {bin_ + "/postgres", "-D", data, "-p", std::to_string(port_), "-c",
       "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_->path().string(), "-c",
       "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
       "max_connections=200", "-c", "shared_buffers=32MB"},
      {},
      "",
      "postgres"});
  // Ready when this very server answers, asked through its own socket directory: another test's
  // server on a TCP port both were given must not pass for it.
  std::string ready = bin_ + "/pg_isready";
  bool up = Eventually(
      [&] {
        if (!proc_->Running()) return true;  // ended: no use waiting
        auto r = RunCommand({ready, "-q", "-h", dir_->path().string(), "-p", std::to_string(port_)},
                            std::chrono::seconds(5));
        return r.exit_code == 0;
      },
      std::chrono::seconds(60));
  if (up && proc_->Running()) return true;
  ThrowUnlessPortTaken("postgres", port_, proc_);
  return false;
}

void PostgresServer::Start() {
  if (proc_) return;
  if (!Launch()) {
    throw std::runtime_error("postgres: port " + std::to_string(port_) +
                             " was taken by another process meanwhile");
  }
}

void PostgresServer::Stop() {
  if (!proc_) return;
  // runuser sits between us and the postmaster; signal the postmaster itself (its pid is the
  // first line of postmaster.pid). SIGINT = fast shutdown: no waiting for clients.
  std::ifstream pidfile(dir_->path() / "data" / "postmaster.pid");
  pid_t pid = 0;
  if (pidfile >> pid && pid > 0) ::kill(pid, SIGINT);
  if (!proc_->Wait(std::chrono::seconds(10))) proc_->Signal(SIGKILL);
  proc_.reset();
}

void PostgresServer::Restart() {
  Stop();
  Start();
}

std::string PostgresServer::CreateDatabase(const std::string& name) {
  static std::atomic<int> counter{0};
  std::string db = name.empty() ? "ferry_test_" + std::to_string(++counter) : name;
  Psql("CREATE DATABASE \"" + db + "\"");
  return url(db);
}

std::string PostgresServer::Psql(const std::string& sql, const std::string& db) const {
  auto r = RunCommand(
      {bin_ + "/psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
       std::to_string(port_), "-U", options_.user, "-d", db, "-c", sql},
      std::chrono::seconds(30), {{"PGPASSWORD", options_.password}});
  if (r.exit_code != 0) throw std::runtime_error("psql failed: " + r.err);
  return Trimmed(r.out);
}

}  // namespace ferry::testing
