#include "core/dynamic_library.h"

#include <dlfcn.h>

namespace ferry {

Result<std::unique_ptr<DynamicLibrary>> DynamicLibrary::Open(const OnDemandLibrary& library) {
  // RTLD_NODELETE: the library stays mapped after dlclose, so the functions bound from it stay
  // valid for the process's life (connections and handles may be closed during exit).
  void* handle = ::dlopen(library.file, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return Fail(ErrorCode::kUnavailable, std::string(library.purpose) + " needs " + library.file +
                                             " (Debian package " + library.package +
                                             "): " + (why != nullptr ? why : "not found"));
  }
  return std::unique_ptr<DynamicLibrary>(new DynamicLibrary(handle, library.file));
}

DynamicLibrary::~DynamicLibrary() { ::dlclose(handle_); }

Result<void*> DynamicLibrary::Find(const char* symbol) const {
  ::dlerror();  // clear an older error: a symbol's address may legitimately be null
  void* address = ::dlsym(handle_, symbol);
  if (const char* why = ::dlerror(); why != nullptr || address == nullptr) {
    return Fail(ErrorCode::kUnavailable,
                name_ + " has no " + symbol + ": " + (why != nullptr ? why : "null address"));
  }
  return address;
}

}  // namespace ferry
