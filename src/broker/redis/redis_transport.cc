#include "broker/redis/redis_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>

#include "core/dynamic_library.h"

namespace ferry::redis_broker {
namespace {

// (EWOULDBLOCK is EAGAIN on Linux.)

// libssl (and the libcrypto it needs) is loaded when the first TLS context is made
// (core/dynamic_library.h): a process that never speaks TLS to Redis does not map it. dlsym on
// libssl's handle also finds libcrypto's functions (its dependency).
#define FERRY_LIBSSL_FUNCTIONS(X)       \
  X(ERR_peek_last_error)                \
  X(ERR_error_string_n)                 \
  X(ERR_clear_error)                    \
  X(BIO_get_data)                       \
  X(BIO_clear_flags)                    \
  X(BIO_set_flags)                      \
  X(BIO_meth_new)                       \
  X(BIO_get_new_index)                  \
  X(BIO_meth_set_write)                 \
  X(BIO_meth_set_read)                  \
  X(BIO_meth_set_ctrl)                  \
  X(BIO_new)                            \
  X(BIO_set_data)                       \
  X(BIO_set_init)                       \
  X(X509_VERIFY_PARAM_set1_ip_asc)      \
  X(X509_VERIFY_PARAM_set_hostflags)    \
  X(X509_VERIFY_PARAM_set1_host)        \
  X(X509_verify_cert_error_string)      \
  X(X509_get0_notAfter)                 \
  X(ASN1_TIME_to_tm)                    \
  X(X509_free)                          \
  X(SSL_CTX_new)                        \
  X(TLS_client_method)                  \
  X(SSL_CTX_free)                       \
  X(SSL_CTX_ctrl)                       \
  X(SSL_CTX_set_verify)                 \
  X(SSL_CTX_load_verify_locations)      \
  X(SSL_CTX_set_default_verify_paths)   \
  X(SSL_CTX_use_certificate_chain_file) \
  X(SSL_CTX_use_PrivateKey_file)        \
  X(SSL_CTX_check_private_key)          \
  X(SSL_new)                            \
  X(SSL_set_bio)                        \
  X(SSL_ctrl)                           \
  X(SSL_get0_param)                     \
  X(SSL_connect)                        \
  X(SSL_get_verify_result)              \
  X(SSL_get_error)                      \
  X(SSL_get1_peer_certificate)          \
  X(SSL_free)                           \
  X(SSL_write)                          \
  X(SSL_read)
struct LibSsl {
  FERRY_LIBSSL_FUNCTIONS(FERRY_DL_FIELD)
};

const Result<LibSsl>& LoadedSsl() {
  return DynamicLibrary::LoadTableOnce<LibSsl>(
      kLibSsl, [](auto&& bind, LibSsl& table) { FERRY_LIBSSL_FUNCTIONS(FERRY_DL_BIND) });
}

// Only after TlsContext::Make succeeded, which checks the load: every TLS object comes from a
// context.
const LibSsl& Ssl() { return *LoadedSsl(); }

std::string OpenSslReason() {
  unsigned long e = Ssl().ERR_peek_last_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  Ssl().ERR_error_string_n(e, buf, sizeof buf);
  // "error:0A000086:SSL routines::certificate verify failed" -> the reason after the last ':'.
  std::string s(buf);
  auto colon = s.rfind(':');
  return colon == std::string::npos ? s : s.substr(colon + 1);
}

bool IsIpLiteral(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// A socket BIO whose writes use MSG_NOSIGNAL: OpenSSL's own socket BIO write()s, which raises
// SIGPIPE when the server has gone.
int FdOf(BIO* b) { return static_cast<int>(reinterpret_cast<intptr_t>(Ssl().BIO_get_data(b))); }

int BioWrite(BIO* b, const char* data, int len) {
  Ssl().BIO_clear_flags(b, BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY);
  while (true) {
    ssize_t n = ::send(FdOf(b), data, static_cast<size_t>(len), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) Ssl().BIO_set_flags(b, BIO_FLAGS_WRITE | BIO_FLAGS_SHOULD_RETRY);
    return -1;
  }
}

int BioRead(BIO* b, char* buf, int len) {
  Ssl().BIO_clear_flags(b, BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY);
  while (true) {
    ssize_t n = ::recv(FdOf(b), buf, static_cast<size_t>(len), 0);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) Ssl().BIO_set_flags(b, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY);
    return -1;
  }
}

long BioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

BIO_METHOD* SocketMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m =
        Ssl().BIO_meth_new(Ssl().BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ferry socket");
    Ssl().BIO_meth_set_write(m, BioWrite);
    Ssl().BIO_meth_set_read(m, BioRead);
    Ssl().BIO_meth_set_ctrl(m, BioCtrl);
    return m;
  }();
  return method;
}

timeval ToTimeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

// Connects a non-blocking socket within `timeout`, then makes it blocking. Returns 0 or errno.
int ConnectWithin(int fd, const sockaddr* addr, socklen_t len, std::chrono::milliseconds timeout) {
  if (::connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS && errno != EAGAIN) return errno;
  pollfd p{fd, POLLOUT, 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  if (r == 0) return ETIMEDOUT;
  if (r < 0) return errno;
  int err = 0;
  socklen_t elen = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return errno;
  return err;
}

void MakeBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

// As hiredis' redisEnableKeepAlive: probes after 15s idle, a dead peer found within ~30s.
void EnableKeepAlive(int fd) {
  int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &yes, sizeof yes);
  int idle = 15;
  int interval = 5;
  int count = 3;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

}  // namespace

std::string Address::ToString() const {
  if (!unix_socket.empty()) return unix_socket;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<std::shared_ptr<const TlsContext>> TlsContext::Make(const RedisTlsOptions& options) {
  if (const auto& loaded = LoadedSsl(); !loaded) return Fail(loaded.error());
  SSL_CTX* ctx = Ssl().SSL_CTX_new(Ssl().TLS_client_method());
  if (ctx == nullptr) return Fail(ErrorCode::kInternal, "cannot create a TLS context");
  auto fail = [&](const std::string& what) {
    std::string why = OpenSslReason();
    Ssl().ERR_clear_error();
    Ssl().SSL_CTX_free(ctx);
    return Fail(ErrorCode::kInvalidArgument, what + ": " + why);
  };
  Ssl().SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  if (options.verify) {
    Ssl().SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!options.ca_file.empty()) {
      if (Ssl().SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
        return fail("cannot load the Redis TLS CA file " + options.ca_file);
      }
    } else if (Ssl().SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return fail("cannot load the system's trust store");
    }
  } else {
    Ssl().SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!options.cert_file.empty()) {
    if (Ssl().SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
      return fail("cannot load the Redis TLS client certificate " + options.cert_file);
    }
    if (Ssl().SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      if (OpenSslReason().find("mismatch") != std::string::npos) {
        return fail("the Redis TLS client key " + options.key_file + " does not match " +
                    options.cert_file);
      }
      return fail("cannot load the Redis TLS client key " + options.key_file);
    }
    if (Ssl().SSL_CTX_check_private_key(ctx) != 1) {
      return fail("the Redis TLS client key " + options.key_file + " does not match " +
                  options.cert_file);
    }
  }
  return std::shared_ptr<const TlsContext>(
      new TlsContext(ctx, options.verify, options.server_name));
}

TlsContext::~TlsContext() { Ssl().SSL_CTX_free(ctx_); }

std::string TlsContext::ServerName(const std::string& host) const {
  return server_name_.empty() ? host : server_name_;
}

Result<std::unique_ptr<Transport>> Transport::Open(const Address& address, const TlsContext* tls,
                                                   std::chrono::milliseconds timeout) {
  const std::string where = address.ToString();
  auto unavailable = [&](const std::string& why) {
    return Fail(ErrorCode::kUnavailable, "cannot connect to Redis at " + where + ": " + why);
  };
  int fd = -1;
  if (!address.unix_socket.empty()) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (address.unix_socket.size() >= sizeof sa.sun_path)
      return unavailable("socket path too long");
    std::memcpy(sa.sun_path, address.unix_socket.c_str(), address.unix_socket.size() + 1);
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return unavailable(std::strerror(errno));
    int err = ConnectWithin(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa, timeout);
    if (err != 0) {
      ::close(fd);
      return unavailable(std::strerror(err));
    }
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const std::string port = std::to_string(address.port);
    int rc = ::getaddrinfo(address.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0) return unavailable(::gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(list, ::freeaddrinfo);
    int err = ECONNREFUSED;
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
      if (fd < 0) {
        err = errno;
        continue;
      }
      err = ConnectWithin(fd, ai->ai_addr, ai->ai_addrlen, timeout);
      if (err == 0) break;
      ::close(fd);
      fd = -1;
    }
    if (fd < 0) return unavailable(std::strerror(err));
    int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    EnableKeepAlive(fd);
  }
  MakeBlocking(fd);
  std::unique_ptr<Transport> t(new Transport(fd));
  if (!t->SetTimeout(timeout)) return unavailable(t->error());
  if (tls == nullptr) return t;

  Ssl().ERR_clear_error();
  t->ssl_ = Ssl().SSL_new(tls->get());
  if (t->ssl_ == nullptr) return unavailable("cannot start a TLS session: " + OpenSslReason());
  BIO* bio = Ssl().BIO_new(SocketMethod());
  Ssl().BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  Ssl().BIO_set_init(bio, 1);
  Ssl().SSL_set_bio(t->ssl_, bio, bio);
  const std::string name = tls->ServerName(address.host);
  if (!name.empty() && !IsIpLiteral(name)) {
    // SSL_set_tlsext_host_name, without the macro's C cast.
    Ssl().SSL_ctrl(t->ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                   const_cast<char*>(name.c_str()));
  }
  if (tls->verify() && !name.empty()) {
    X509_VERIFY_PARAM* param = Ssl().SSL_get0_param(t->ssl_);
    if (IsIpLiteral(name)) {
      Ssl().X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      Ssl().X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      Ssl().X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    }
  }
  int ret = Ssl().SSL_connect(t->ssl_);
  if (ret != 1) {
    long verify = Ssl().SSL_get_verify_result(t->ssl_);
    if (verify != X509_V_OK) {
      return unavailable("TLS handshake failed: certificate verify failed (" +
                         std::string(Ssl().X509_verify_cert_error_string(verify)) + ") for '" +
                         name + "'");
    }
    t->SetTlsError(Ssl().SSL_get_error(t->ssl_, ret), ret);
    return unavailable("TLS handshake failed: " + t->error());
  }
  if (X509* cert = Ssl().SSL_get1_peer_certificate(t->ssl_); cert != nullptr) {
    std::tm tm{};
    if (Ssl().ASN1_TIME_to_tm(Ssl().X509_get0_notAfter(cert), &tm) == 1) {
      t->peer_cert_expires_ms_ = static_cast<int64_t>(timegm(&tm)) * 1000;
    }
    Ssl().X509_free(cert);
  }
  return t;
}

Transport::~Transport() {
  if (ssl_ != nullptr) Ssl().SSL_free(ssl_);  // frees the BIO too; no close_notify (as hiredis)
  if (fd_ >= 0) ::close(fd_);
}

void Transport::SetErrno(int err) {
  if (err == EAGAIN) {
    error_ = "timed out";
  } else {
    error_ = std::strerror(err);
  }
}

void Transport::SetTlsError(int ssl_error, int ret) {
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
      error_ = "Server closed the connection";
      break;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      error_ = "timed out";
      break;
    case SSL_ERROR_SYSCALL:
      if (Ssl().ERR_peek_last_error() != 0) {
        error_ = "TLS error: " + OpenSslReason();
      } else if (ret == 0 || errno == 0) {
        error_ = "Server closed the connection";
      } else {
        SetErrno(errno);
      }
      break;
    default:
      error_ = "TLS error: " + OpenSslReason();
      break;
  }
  Ssl().ERR_clear_error();
}

bool Transport::SetTimeout(std::chrono::milliseconds timeout) {
  timeval tv = ToTimeval(timeout);
  if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    SetErrno(errno);
    return false;
  }
  return true;
}

bool Transport::WriteAll(const char* data, size_t len, size_t* sent) {
  const size_t total = len;
  if (sent != nullptr) *sent = 0;
  const auto failed = [&] {
    if (sent != nullptr) *sent = total - len;
    return false;
  };
  while (len > 0) {
    if (ssl_ != nullptr) {
      Ssl().ERR_clear_error();
      int chunk = static_cast<int>(std::min<size_t>(len, 1 << 30));
      int n = Ssl().SSL_write(ssl_, data, chunk);
      if (n <= 0) {
        SetTlsError(Ssl().SSL_get_error(ssl_, n), n);
        return failed();
      }
      data += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      SetErrno(errno);
      return failed();
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

size_t Transport::Read(char* buf, size_t cap) {
  if (ssl_ != nullptr) {
    Ssl().ERR_clear_error();
    int n = Ssl().SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(cap, 1 << 30)));
    if (n > 0) return static_cast<size_t>(n);
    SetTlsError(Ssl().SSL_get_error(ssl_, n), n);
    return 0;
  }
  while (true) {
    ssize_t n = ::recv(fd_, buf, cap, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) {
      error_ = "Server closed the connection";
      return 0;
    }
    if (errno == EINTR) continue;
    SetErrno(errno);
    return 0;
  }
}

}  // namespace ferry::redis_broker
