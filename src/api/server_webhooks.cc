// The API server's webhooks: admission reads the workflow's trigger (methods, body limit), before
// the body is read unless it came with the head (http::Admit); delivery checks the signature and
// starts the run through the service (server_internal.h lists the server's files).
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <any>

#include "api/http_util.h"
#include "api/server_internal.h"
#include "api/webhook_auth.h"

namespace ferry::api {

using http::Request;
using http::Response;
using namespace server_internal;

namespace {

// What a webhook's sender, who needs no token, is told of a failure on the server's side: that it
// may retry, not the driver's message, which names the store's or Redis's host and port. The
// server's log has the message.
Error ForSender(const std::string& workflow, const Error& e) {
  if (e.code != ErrorCode::kUnavailable && e.code != ErrorCode::kInternal) return e;
  spdlog::warn("webhook {}: answered {}: {}", workflow,
               e.code == ErrorCode::kUnavailable ? "503" : "500", e.message);
  if (e.code == ErrorCode::kUnavailable) {
    return Error{e.code, "the server cannot reach its store or Redis just now; retry later"};
  }
  return Error{e.code, "internal error (the server's log says more)"};
}

}  // namespace

std::optional<Response> ApiServer::Impl::AdmitHook(Request& req, int64_t& body_limit) {
  Response res;
  const std::string& name = req.params[0];
  auto target = service.FindWebhook(name);
  if (!target) {
    SendError(res, ForSender(name, target.error()));
    return res;
  }
  if (!target->trigger) {
    SendError(res, ErrorCode::kNotFound, "workflow " + name + " has no webhook trigger");
    return res;
  }
  // Admitted from here on, whatever the answer: the request names a workflow that exists, so its
  // name may be a metric label (ApiServer::Start's on_response).
  req.context = AdmittedHook{std::move(*target)};
  const engine::WebhookTrigger& trigger =
      *std::any_cast<const AdmittedHook&>(req.context).target.trigger;
  // HEAD never starts a run, even where GET does: link checkers and monitors send it as a
  // request without effects (RFC 9110 calls it safe).
  if (req.method == "HEAD" || std::find(trigger.methods.begin(), trigger.methods.end(),
                                        req.method) == trigger.methods.end()) {
    std::string allow;
    for (const auto& m : trigger.methods) allow += (allow.empty() ? "" : ", ") + m;
    res.SetHeader("Allow", allow);
    SendJson(res, 405,
             http::ErrorBody("method_not_allowed",
                             "webhook " + name + " accepts " + allow + ", not " + req.method));
    return res;
  }
  body_limit = trigger.max_body_bytes;
  return std::nullopt;
}

void ApiServer::Impl::Hook(const Request& req, Response& res) {
  auto fail = [&](const Error& e) { SendError(res, e); };
  const std::string& name = req.params[0];
  const service::WebhookTarget& target = std::any_cast<const AdmittedHook&>(req.context).target;
  const engine::WebhookTrigger& trigger = *target.trigger;
  const std::string& method = req.method;  // never HEAD: admission refuses it
  const std::string& body = req.body;
  const HeaderList& headers = req.headers;
  std::vector<std::string> secret_values;
  for (const auto& secret_name : trigger.secrets) {
    secret_values.push_back(secrets().Resolve(secret_name).value_or(""));
  }
  if (trigger.auth != engine::WebhookAuth::kNone &&
      std::all_of(secret_values.begin(), secret_values.end(),
                  [](const std::string& v) { return v.empty(); })) {
    spdlog::error(
        "webhook {}: none of its secrets ({}) is set on this server (FERRY_SECRET_<NAME> or the "
        "secrets file)",
        name, fmt::join(trigger.secrets, ", "));
    return fail(
        Error{ErrorCode::kInternal, "this webhook's secret is not configured on the server"});
  }
  auto verified = VerifyWebhook(trigger, secret_values, headers, body, options.clock->NowMs());
  if (!verified) return fail(verified.error());

  auto parsed = WebhookTriggerData(trigger, method, headers, req.query, body);
  if (!parsed) return fail(parsed.error());
  Json data = std::move(*parsed);
  if (trigger.slack_url_verification) {
    if (auto challenge = UrlVerificationChallenge(data["body"])) {
      return SendJson(res, 200, Json{{"challenge", *challenge}});
    }
  }

  service::WebhookDelivery delivery;
  delivery.data = std::move(data);
  delivery.nonce = verified->nonce;
  delivery.nonce_expires_ms = verified->nonce_expires_ms;
  auto started = service.StartWebhookRun(name, target, std::move(delivery));
  if (!started) return SendError(res, ForSender(name, started.error()));
  SendJson(res, 202, started->answer);
  res.after = std::move(started->enqueue);
}
}  // namespace ferry::api
