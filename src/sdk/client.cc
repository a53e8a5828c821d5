// Client: the public producer API over the Broker (tasks) and runs::StartRun (workflow runs).
#include "ferry/client.h"

#include "broker/broker.h"
#include "core/time_util.h"
#include "runs/runs.h"
#include "store/store.h"
#include "worker/worker.h"

namespace ferry {

struct Client::Impl {
  ClientOptions options;
  std::unique_ptr<TaskClient> tasks;
  std::unique_ptr<Store> store;  // opened by the first StartRun
};

namespace {

TaskInfo Info(const TaskRecord& r) {
  TaskInfo info;
  info.id = r.id;
  info.kind = r.kind;
  info.queue = r.queue;
  info.status = std::string(TaskStatusName(r.status));
  info.attempts = r.attempts;
  if (!r.result.empty()) {
    auto parsed = ParseJson(r.result);
    info.result = parsed ? std::move(*parsed) : Json(r.result);
  }
  info.error = r.error;
  return info;
}

}  // namespace

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  BrokerOptions b;
  b.redis_url = options.redis_url;
  b.prefix = options.prefix;
  auto broker = MakeRedisBrokerFactory(b)->Open();
  if (!broker) return Fail(broker.error());
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->tasks = std::make_unique<TaskClient>(std::move(*broker));
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<std::string> Client::Submit(const std::string& kind, const Json& payload,
                                   const SubmitOptions& options) {
  SubmitRequest req;
  req.kind = kind;
  req.payload = payload;
  req.queue = options.queue;
  req.max_attempts = options.max_attempts;
  req.timeout = options.timeout;
  if (options.delay.count() > 0) req.eta_ms = WallNowMs() + options.delay.count();
  req.unique_key = options.unique_key;
  auto r = impl_->tasks->Submit(req);
  if (!r) return Fail(r.error());
  return r->id;
}

Result<TaskInfo> Client::Get(const std::string& id) {
  auto r = impl_->tasks->broker().GetTask(id);
  if (!r) return Fail(r.error());
  if (!*r) return Fail(ErrorCode::kNotFound, "no task with id " + id);
  return Info(**r);
}

Result<TaskInfo> Client::Wait(const std::string& id, std::chrono::milliseconds timeout) {
  auto r = impl_->tasks->Wait(id, timeout);
  if (!r) return Fail(r.error());
  return Info(*r);
}

Result<std::string> Client::Cancel(const std::string& id) {
  auto r = impl_->tasks->broker().Cancel(id);
  if (!r) return Fail(r.error());
  return std::string(TaskStatusName(*r));
}

Result<std::string> Client::StartRun(const std::string& workflow, const Json& inputs,
                                     const std::string& queue) {
  if (impl_->options.store.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "StartRun needs ClientOptions::store");
  }
  if (!impl_->store) {
    auto store = OpenStore(impl_->options.store);
    if (!store) return Fail(store.error());
    impl_->store = std::move(*store);
  }
  runs::StartRunRequest req;
  req.workflow = workflow;
  req.inputs = inputs;
  req.queue = queue;
  auto r = runs::StartRun(*impl_->store, impl_->tasks->broker(), req);
  if (!r) return Fail(r.error());
  return r->run.id;
}

}  // namespace ferry
