// One connection to one Redis server (or sentinel): the transport (TCP, Unix socket, TLS), the
// handshake (AUTH with an optional ACL user, SELECT, the master check under Sentinel, loading
// the broker's scripts), commands and pipelines, transparent reconnect after an I/O error, and
// EVALSHA with reload on NOSCRIPT.
//
// Thread-safety: not thread-safe (REQUIRES: external synchronization). Only broker/redis/
// includes this header (it pulls in hiredis).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/redis/redis_protocol.h"
#include "broker/redis/redis_scripts.h"
#include "broker/redis/redis_transport.h"
#include "core/json_fields.h"  // OutcomeUnknown
#include "core/result.h"

namespace ferry::redis_broker {

// How every connection of one client authenticates and behaves. Constant once built.
struct ConnectionSettings {
  std::string username;  // AUTH user; empty: the default user
  std::string password;  // AUTH when this or username is set
  int db = 0;
  std::chrono::milliseconds io_timeout{5000};
  std::shared_ptr<const TlsContext> tls;  // null: plain TCP / Unix socket
  bool load_scripts = true;               // SCRIPT LOAD the broker's scripts at connect
  bool require_master = false;            // refuse a server whose ROLE is not master (Sentinel)
  std::string kind = "Redis";             // "Redis" or "sentinel", for messages
};

class Connection {
 public:
  // Does not connect; the first call (or Connect()) does.
  Connection(Address address, std::shared_ptr<const ConnectionSettings> settings);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects, authenticates, selects the database and loads the scripts, in one round trip.
  // Errors: kUnavailable, kUnauthenticated.
  Status Connect();
  // Reconnects when a previous call broke the connection; no-op otherwise.
  Status Ready();
  void Close();
  bool connected() const { return transport_ != nullptr; }
  // Points a closed connection elsewhere (Sentinel: the master moved). No-op while connected.
  void Retarget(Address address);
  // Bumped by every successful Connect(): callers drop per-connection caches when it changes.
  uint64_t generation() const { return generation_; }
  const Address& address() const { return address_; }
  // The endpoint for messages ("127.0.0.1:6379"); never holds the password.
  const std::string& where() const { return where_; }
  // TLS: when the server's certificate expires (epoch ms); 0 without TLS or while disconnected.
  int64_t tls_cert_expires_ms() const {
    return transport_ ? transport_->peer_cert_expires_ms() : 0;
  }

  // One command. An error reply becomes an Error (see ReplyError). `extra` is added to the
  // socket timeout for this call (the BLOCK time of a blocking read).
  Result<ReplyPtr> Command(const Args& args, std::chrono::milliseconds extra = {});
  // Sends every command, then reads every reply (raw: error replies are returned as replies).
  // EVALSHA replies failing with NOSCRIPT are retried once after reloading the scripts. A
  // READONLY reply (this server became a replica) closes the connection after the replies are
  // read, so the next call reconnects, and under Sentinel finds the new master.
  // A connection lost once any of the commands had gone out, before all their answers came (a
  // timeout, a server gone mid-call), fails with details kOutcomeUnknown (OutcomeUnknown): they
  // may have taken effect. The message stays the connection's own.
  Result<std::vector<ReplyPtr>> Pipeline(const std::vector<Args>& commands,
                                         std::chrono::milliseconds extra = {});
  Result<std::vector<ReplyPtr>> Pipeline(const std::vector<const Args*>& commands,
                                         std::chrono::milliseconds extra = {});

 private:
  Status LoadScripts();
  // Writes the commands and reads as many replies; no retries. `written` becomes true once any
  // byte of them went out.
  Result<std::vector<ReplyPtr>> Exchange(const std::vector<const Args*>& commands,
                                         std::string_view what, bool* written = nullptr);
  // Marks the connection broken after an I/O error and describes it.
  Error Broken(std::string_view during, std::string why);
  Status SetTimeout(std::chrono::milliseconds timeout);
  Error HandshakeError(std::string_view what, const redisReply& reply) const;

  // Constant after construction.
  const std::shared_ptr<const ConnectionSettings> settings_;

  Address address_;
  std::string where_;
  std::unique_ptr<Transport> transport_;  // null while disconnected
  std::unique_ptr<Reader> reader_;
  std::string out_;  // encoded commands being sent
  uint64_t generation_ = 0;
};

// Args for EVALSHA of `script` with one key; append the script's ARGV to it.
Args EvalArgs(Script script, std::string_view key);

}  // namespace ferry::redis_broker
