// A shared library loaded when first needed (dlopen) instead of at process start. libpq and
// libcurl bring Kerberos, LDAP, GnuTLS and p11-kit with them, whose constructors run at load and
// leave about 5 MB resident, and libcrypto's relocations alone leave 1.4 MB: a worker that never
// talks to PostgreSQL, makes an outbound HTTP request, hashes or speaks TLS should not carry them
// (docs/benchmarks.md, idle worker memory).
//
// Thread-safety: Open and Find may be called from any thread.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <type_traits>

#include "core/result.h"

// A table field for the function `name` of an X-macro list, and its binding in LoadTable.
#define FERRY_DL_FIELD(name) decltype(&::name) name = nullptr;
#define FERRY_DL_BIND(name) bind(table.name, #name);

namespace ferry {

// A library Ferry loads on first use. Listed by `ferry --json version` (loads_on_demand), from
// which deploy/docker/runtime-packages.sh adds their packages to the container image; the Debian
// package names them in its Depends (cmake/FerryPackage.cmake, checked by the package test).
struct OnDemandLibrary {
  const char* file;     // the soname dlopen asks for
  const char* package;  // the Debian package that ships it
  const char* purpose;  // what needs it, for the error when it is missing
};
inline constexpr OnDemandLibrary kLibPq{"libpq.so.5", "libpq5", "a PostgreSQL store"};
inline constexpr OnDemandLibrary kLibCurl{
    "libcurl.so.4", "libcurl4", "outbound HTTP (http nodes and handlers, alert webhooks)"};
inline constexpr OnDemandLibrary kLibCrypto{
    "libcrypto.so.3", "libssl3", "hashing and signing (API tokens, webhooks, http handlers)"};
inline constexpr OnDemandLibrary kLibSsl{"libssl.so.3", "libssl3", "TLS to Redis (rediss://)"};
inline constexpr std::array<OnDemandLibrary, 4> kOnDemandLibraries{kLibPq, kLibCurl, kLibCrypto,
                                                                   kLibSsl};

class DynamicLibrary {
 public:
  // dlopen(library.file, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE): functions bound from it stay
  // valid after this object is gone. kUnavailable names the library, what it is for and the
  // Debian package that provides it.
  static Result<std::unique_ptr<DynamicLibrary>> Open(const OnDemandLibrary& library);
  ~DynamicLibrary();  // dlclose (the library stays mapped: RTLD_NODELETE)
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  // Opens `library` and fills a table of its functions: `bind_all(bind, table)` calls
  // bind(table.fn, "fn") for each, usually through an X-macro list and FERRY_DL_BIND:
  //   #define LIBFOO_FUNCTIONS(X) X(foo_open) X(foo_close)
  //   struct LibFoo { LIBFOO_FUNCTIONS(FERRY_DL_FIELD) };
  //   auto foo = DynamicLibrary::LoadTable<LibFoo>(
  //       kLibFoo, [](auto&& bind, LibFoo& table) { LIBFOO_FUNCTIONS(FERRY_DL_BIND) });
  // The first missing function is the error. The library stays mapped (RTLD_NODELETE).
  template <typename Table, typename BindAll>
  static Result<Table> LoadTable(const OnDemandLibrary& library, BindAll bind_all) {
    auto lib = Open(library);
    if (!lib) return Fail(lib.error());
    Table table;
    Status bound;
    bind_all(
        [&](auto& fn, const char* symbol) {
          if (bound) bound = (*lib)->Bind(fn, symbol);
        },
        table);
    if (!bound) return Fail(bound.error());
    return table;
  }

  // LoadTable on the first call from this call site, the same result (table or error) on every
  // later one. Kept for the process's life, never destroyed: objects that other statics'
  // destructors release during exit still call into it.
  template <typename Table, typename BindAll>
  static const Result<Table>& LoadTableOnce(const OnDemandLibrary& library, BindAll bind_all) {
    // One static per instantiation, and each call site's lambda is a type of its own.
    static const auto* loaded = new Result<Table>(LoadTable<Table>(library, bind_all));
    return *loaded;
  }

  // Sets `fn` to the function `symbol`; kUnavailable (naming both) when the library lacks it.
  template <typename Fn>
  Status Bind(Fn& fn, const char* symbol) const {
    static_assert(std::is_pointer_v<Fn> && std::is_function_v<std::remove_pointer_t<Fn>>);
    auto address = Find(symbol);
    if (!address) return Fail(address.error());
    // POSIX: dlsym's result converts to the function pointer type it names.
    fn = reinterpret_cast<Fn>(*address);
    return {};
  }

 private:
  DynamicLibrary(void* handle, std::string name) : handle_(handle), name_(std::move(name)) {}
  Result<void*> Find(const char* symbol) const;

  void* handle_;
  std::string name_;
};

}  // namespace ferry
