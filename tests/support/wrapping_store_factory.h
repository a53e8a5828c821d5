// A StoreFactory whose stores are another factory's, each handed to a wrapper first: how a race
// test pauses or fails one method (e.g. FinishRun under one epoch) of the stores that a real
// component (the run handler, the scheduler) opens for itself.
//
// Thread-safety: Open() may be called from any thread if the target factory and `wrap` allow it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "store/store.h"
#include "store/store_wrapper.h"

namespace ferry::testing {

namespace internal {
struct StoreHolder {
  std::unique_ptr<Store> held;
};
}  // namespace internal

// A StoreWrapper that owns the store it forwards to. Derive and override one method.
class OwningStoreWrapper : private internal::StoreHolder, public StoreWrapper {
 public:
  explicit OwningStoreWrapper(std::unique_ptr<Store> target)
      : internal::StoreHolder{std::move(target)}, StoreWrapper(*held) {}
};

class WrappingStoreFactory final : public StoreFactory {
 public:
  using Wrap = std::function<std::unique_ptr<Store>(std::unique_ptr<Store>)>;
  // REQUIRES: target outlives this factory and every store it opens.
  WrappingStoreFactory(StoreFactory& target, Wrap wrap) : target_(target), wrap_(std::move(wrap)) {}

  Result<std::unique_ptr<Store>> Open() override {
    auto store = target_.Open();
    if (!store) return store;
    return wrap_(std::move(*store));
  }
  std::string_view Backend() const override { return target_.Backend(); }
  std::string Describe() const override { return target_.Describe(); }

 private:
  StoreFactory& target_;
  Wrap wrap_;
};

}  // namespace ferry::testing
