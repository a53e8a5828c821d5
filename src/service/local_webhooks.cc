// LocalService: what `/hooks/{workflow}` needs from the store and the broker (the HTTP checks,
// methods and signatures, stay in src/api).
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <utility>

#include "engine/ingest.h"
#include "runs/runs.h"
#include "service/local_service.h"

namespace ferry::service {
namespace {

// How long webhooks' runs are left to the sweeper after a submission to Redis failed.
constexpr std::chrono::seconds kSubmitPause{5};

}  // namespace

Result<WebhookTarget> LocalService::FindWebhook(const std::string& name) {
  return With(stores_, [&](Store& store) -> Result<WebhookTarget> {
    auto wf = store.GetWorkflow(name);
    if (!wf) return Fail(wf.error());
    if (!*wf) return Fail(ErrorCode::kNotFound, "no workflow " + name);
    {
      std::lock_guard lock(webhooks_mu_);
      auto it = webhooks_.find((*wf)->id);
      if (it != webhooks_.end() && it->second.version == (*wf)->current_version) {
        return it->second;
      }
    }
    auto version = store.GetWorkflowVersion((*wf)->id, (*wf)->current_version);
    if (!version) return Fail(version.error());
    if (!*version) return Fail(ErrorCode::kNotFound, "workflow " + name + " has no version");
    auto ingested = engine::IngestStoredGraph((*version)->graph);
    if (!ingested) {
      return Fail(ErrorCode::kInternal,
                  "stored graph of " + name + " does not load: " + ingested.error().message);
    }
    WebhookTarget target;
    target.workflow_id = (*wf)->id;
    target.version = (*version)->version;
    target.trigger = ingested->workflow.webhook;
    if (target.trigger) {
      TriggerFilter filter;
      filter.workflow_id = target.workflow_id;
      filter.kind = TriggerKind::kWebhook;
      auto triggers = store.ListTriggers(filter);
      if (!triggers) return Fail(triggers.error());
      if (!triggers->empty()) target.trigger_id = triggers->front().id;
    }
    std::lock_guard lock(webhooks_mu_);
    webhooks_[target.workflow_id] = target;
    return target;
  });
}

Result<WebhookRunStarted> LocalService::StartWebhookRun(const std::string& name,
                                                        const WebhookTarget& target,
                                                        WebhookDelivery delivery) {
  runs::StartRunRequest start;
  start.workflow = name;
  // The version the admission read, whose trigger checked this delivery.
  start.known = runs::StartRunRequest::Known{target.workflow_id, target.version};
  const Json& body = delivery.data["body"];
  start.inputs = body.is_object() ? body : Json::object();
  start.allow_unknown_inputs = true;
  start.triggered_by = TriggeredBy::kWebhook;
  start.trigger_id = target.trigger_id;
  start.queue = options_.run_queue;
  start.trigger = std::move(delivery.data);
  if (!delivery.nonce.empty()) {
    start.nonce = runs::StartRunRequest::Nonce{
        "webhook:" + target.workflow_id, std::move(delivery.nonce), delivery.nonce_expires_ms};
  }
  // The answer needs the store only: a webhook is accepted while Redis is away (the sweeper
  // enqueues what could not be).
  auto started = With(stores_, [&](Store& store) -> Result<runs::StartRunResult> {
    return runs::CommitRun(store, start);
  });
  if (!started) return Fail(started.error());
  WebhookRunStarted out;
  out.answer = Json{{"run_id", started->run.id}, {"status", RunStatusName(started->run.status)}};
  out.enqueue = [this, result = std::move(*started)]() mutable {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (now < submit_skip_until_.load()) {
      result.enqueue_error = "not tried: a submission to Redis failed less than " +
                             std::to_string(kSubmitPause.count()) +
                             "s ago (the sweeper enqueues the run)";
    } else {
      auto broker = brokers_.Acquire();
      if (broker && runs::SubmitRunTask(**broker, result)) return;
      if (broker) {
        broker->MarkBad();  // the submission failed: this connection is suspect
      } else {
        result.enqueue_error = broker.error().message;
      }
      // A Redis that hangs would hold a handler thread per webhook for its timeout: for a while,
      // the next webhooks' runs go to the sweeper without trying.
      submit_skip_until_.store(
          (std::chrono::steady_clock::now() + kSubmitPause).time_since_epoch().count());
    }
    // Stored but not enqueued: the sweeper enqueues the run once it has been pending a while.
    auto store = stores_.Acquire();
    if (store) {
      runs::RecordEnqueueFailed(**store, result);
    } else {
      spdlog::warn("run {}: stored as pending, but not enqueued ({}); the sweeper will retry",
                   result.run.id, result.enqueue_error);
    }
  };
  return out;
}

}  // namespace ferry::service
