// The byte stream under a Redis connection: a TCP or Unix socket, optionally wrapped in a TLS
// session (OpenSSL). Ferry owns the socket because Debian's hiredis (0.14) has no TLS; hiredis
// still parses the replies (redis_protocol.h).
//
// Timeouts are socket timeouts (SO_RCVTIMEO/SO_SNDTIMEO) as hiredis used them: each blocking
// read or write waits at most the current timeout. Writes never raise SIGPIPE.
//
// Thread-safety: a TlsContext is immutable after Make() and may be shared by every connection of
// a process; a Transport belongs to one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/redis_url.h"
#include "core/result.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace ferry::redis_broker {

// Certificates and verification settings shared by every TLS connection.
class TlsContext {
 public:
  // Loads the CA file (or the system's trust store), the client certificate and key. Errors
  // (kInvalidArgument) name the file and OpenSSL's reason.
  static Result<std::shared_ptr<const TlsContext>> Make(const RedisTlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }
  bool verify() const { return verify_; }
  // The name to check and send as SNI for a connection to `host`.
  std::string ServerName(const std::string& host) const;

 private:
  TlsContext(SSL_CTX* ctx, bool verify, std::string server_name)
      : ctx_(ctx), verify_(verify), server_name_(std::move(server_name)) {}
  SSL_CTX* ctx_;
  bool verify_;
  std::string server_name_;
};

// Where one connection goes.
struct Address {
  std::string host;         // TCP
  int port = 0;             // TCP
  std::string unix_socket;  // non-empty: this Unix socket instead
  // "host:port" or the socket path; never holds credentials.
  std::string ToString() const;
  bool operator==(const Address& other) const = default;
};

class Transport {
 public:
  // Connects within `timeout` (TCP_NODELAY and keep-alive on TCP), then completes the TLS
  // handshake when `tls` is set, verifying the server's certificate and name unless the context
  // says not to. Errors are kUnavailable with the reason ("Connection refused", "certificate
  // verify failed: ...").
  static Result<std::unique_ptr<Transport>> Open(const Address& address, const TlsContext* tls,
                                                 std::chrono::milliseconds timeout);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Each blocking read or write waits at most this long. False on failure (see error()).
  bool SetTimeout(std::chrono::milliseconds timeout);
  // Writes everything. False on failure; `sent` (when given) then says how much went out
  // before it.
  bool WriteAll(const char* data, size_t len, size_t* sent = nullptr);
  // Reads what is available (blocking for at least one byte). 0 on failure, including the
  // server closing the connection.
  size_t Read(char* buf, size_t cap);
  // Why the last call failed: "timed out", "Server closed the connection", "Connection reset by
  // peer", an OpenSSL reason.
  const std::string& error() const { return error_; }
  bool tls() const { return ssl_ != nullptr; }
  // When the server's certificate expires (epoch ms); 0 without TLS.
  int64_t peer_cert_expires_ms() const { return peer_cert_expires_ms_; }

 private:
  explicit Transport(int fd) : fd_(fd) {}
  void SetErrno(int err);
  void SetTlsError(int ssl_error, int ret);

  int fd_;
  SSL* ssl_ = nullptr;
  std::string error_;
  int64_t peer_cert_expires_ms_ = 0;
};

}  // namespace ferry::redis_broker
