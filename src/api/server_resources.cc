// The API server's /api/v1 resource routes: each is a thin call into the service, which checks
// the request and answers with the record views (server_internal.h lists the server's files).
#include <any>

#include "api/server_internal.h"
#include "core/json_fields.h"
#include "core/task_kinds.h"

namespace ferry::api {

using http::Request;
using http::Response;
using namespace server_internal;
using service::AllowsSecret;

namespace {

// An optional JSON object body: none is {}.
Result<Json> OptionalBody(const Request& req) {
  if (req.body.empty()) return Json::object();
  return ParseJsonObject(req.body);
}

// A shell task runs whatever program its payload names, as the workers' user, which can read
// every secret the workers hold and reach their store: through the API that is admin's, whatever
// scope the route itself needs (docs/api.md, Scopes). `where` names the task in the message.
Status RefuseShellTask(const Request& req, const Json& task, const std::string& where) {
  if (!task.is_object() || task.value("kind", Json()) != kShellTaskKind) return {};
  if (service::Allows(std::any_cast<const Granted&>(req.context).scopes, service::Scope::kAdmin)) {
    return {};
  }
  return Fail(ErrorCode::kPermissionDenied,
              where + "a shell task runs any program on a worker: submitting one needs the " +
                  "admin scope");
}

}  // namespace

service::Caller ApiServer::Impl::CallerOf(const Request& req) const {
  service::Caller caller;
  caller.actor = "api";
  const auto& granted = std::any_cast<const Granted&>(req.context).scopes;
  caller.may_use_secret = [granted](const std::string& secret) {
    return AllowsSecret(granted, secret);
  };
  return caller;
}

void ApiServer::Impl::Answer(Response& res, const Result<Json>& result, int status) {
  if (!result) return SendError(res, result.error());
  SendJson(res, status, *result);
}

void ApiServer::Impl::ApplyWorkflow(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  auto applied = service.ApplyWorkflow(*body, CallerOf(req));
  Answer(res, applied, applied && (*applied)["created"] == true ? 201 : 200);
}

void ApiServer::Impl::ListWorkflows(const Request&, Response& res) {
  Answer(res, service.ListWorkflows());
}

void ApiServer::Impl::GetWorkflow(const Request& req, Response& res) {
  Answer(res, service.GetWorkflow(req.params[0]));
}

void ApiServer::Impl::ListVersions(const Request& req, Response& res) {
  Answer(res, service.ListVersions(req.params[0]));
}

void ApiServer::Impl::GetVersion(const Request& req, Response& res) {
  Answer(res, service.GetVersion(req.params[0], req.params[1]));
}

void ApiServer::Impl::CreateRun(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  Answer(res, service.StartRun(*body, CallerOf(req)), 201);
}

void ApiServer::Impl::ListRuns(const Request& req, Response& res) {
  auto query = QueryOf(req);
  if (!query) return SendError(res, query.error());
  Answer(res, service.ListRuns(*query));
}

void ApiServer::Impl::CountRuns(const Request&, Response& res) { Answer(res, service.CountRuns()); }

void ApiServer::Impl::GetRun(const Request& req, Response& res) {
  Answer(res, service.GetRun(req.params[0]));
}

void ApiServer::Impl::CancelRun(const Request& req, Response& res) {
  Answer(res, service.CancelRun(req.params[0], CallerOf(req)));
}

void ApiServer::Impl::RetryRun(const Request& req, Response& res) {
  auto body = OptionalBody(req);
  if (!body) return SendError(res, body.error());
  Answer(res, service.RetryRun(req.params[0], *body), 201);
}

void ApiServer::Impl::SubmitTask(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  if (auto st = RefuseShellTask(req, *body, ""); !st) return SendError(res, st.error());
  auto submitted = service.SubmitTask(*body);
  Answer(res, submitted, submitted && (*submitted)["existing"] == true ? 200 : 201);
}

void ApiServer::Impl::ListTasks(const Request& req, Response& res) {
  auto query = QueryOf(req);
  if (!query) return SendError(res, query.error());
  Answer(res, service.ListTasks(*query));
}

void ApiServer::Impl::SubmitTasks(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  if (const auto tasks = body->find("tasks"); tasks != body->end() && tasks->is_array()) {
    for (size_t i = 0; i < tasks->size(); ++i) {
      auto st = RefuseShellTask(req, (*tasks)[i], "tasks[" + std::to_string(i) + "]: ");
      if (!st) return SendError(res, st.error());
    }
  }
  auto answer = service.SubmitTasks(*body);
  // 201 when the batch made at least one task, 200 when every one existed (unique keys).
  const bool created = answer && (*answer)["created"].get<int64_t>() > 0;
  Answer(res, answer, created ? 201 : 200);
}

void ApiServer::Impl::GetTask(const Request& req, Response& res) {
  Answer(res, service.GetTask(req.params[0]));
}

void ApiServer::Impl::CancelTask(const Request& req, Response& res) {
  Answer(res, service.CancelTask(req.params[0]));
}

void ApiServer::Impl::RetryTask(const Request& req, Response& res) {
  Answer(res, service.RetryTask(req.params[0]));
}

void ApiServer::Impl::ListWorkers(const Request&, Response& res) {
  Answer(res, service.ListWorkers());
}

void ApiServer::Impl::ListQueues(const Request&, Response& res) {
  Answer(res, service.ListQueues());
}

void ApiServer::Impl::PurgeDead(const Request& req, Response& res) {
  Answer(res, service.PurgeDead(req.params[0]));
}

void ApiServer::Impl::RetryDead(const Request& req, Response& res) {
  Answer(res, service.RetryDead(req.params[0]));
}

void ApiServer::Impl::DeleteQueue(const Request& req, Response& res) {
  Answer(res, service.DeleteQueue(req.params[0]));
}

void ApiServer::Impl::ListSchedules(const Request&, Response& res) {
  Answer(res, service.ListSchedules());
}

void ApiServer::Impl::PauseSchedules(const Request& req, Response& res) {
  Answer(res, service.SetSchedulesPaused(req.params[0], true));
}

void ApiServer::Impl::ResumeSchedules(const Request& req, Response& res) {
  Answer(res, service.SetSchedulesPaused(req.params[0], false));
}

void ApiServer::Impl::ListTokens(const Request&, Response& res) {
  Answer(res, service.ListTokens());
}

void ApiServer::Impl::CreateToken(const Request& req, Response& res) {
  auto body = ParseJsonObject(req.body);
  if (!body) return SendError(res, body.error());
  Answer(res, service.CreateToken(*body), 201);
}

void ApiServer::Impl::RevokeToken(const Request& req, Response& res) {
  Answer(res, service.RevokeToken(req.params[0]));
}

void ApiServer::Impl::GetQueue(const Request& req, Response& res) {
  Answer(res, service.GetQueue(req.params[0]));
}

void ApiServer::Impl::ListDead(const Request& req, Response& res) {
  auto query = QueryOf(req);
  if (!query) return SendError(res, query.error());
  Answer(res, service.ListDead(req.params[0], *query));
}

// ---------------------------------------------------------------------------------------------
// Remediation candidates

void ApiServer::Impl::ListRemediations(const Request& req, Response& res) {
  auto query = QueryOf(req);
  if (!query) return SendError(res, query.error());
  Answer(res, service.ListRemediations(*query));
}

void ApiServer::Impl::GetRemediation(const Request& req, Response& res) {
  Answer(res, service.GetRemediation(req.params[0]));
}

void ApiServer::Impl::DismissRemediation(const Request& req, Response& res) {
  auto body = OptionalBody(req);
  if (!body) return SendError(res, body.error());
  Answer(res, service.DismissRemediation(req.params[0], *body, CallerOf(req)));
}

void ApiServer::Impl::ReopenRemediation(const Request& req, Response& res) {
  Answer(res, service.ReopenRemediation(req.params[0], CallerOf(req)));
}

void ApiServer::Impl::RemediationDiff(const Request& req, Response& res) {
  Answer(res, service.RemediationDiff(req.params[0]));
}

// ---------------------------------------------------------------------------------------------
// Operations

void ApiServer::Impl::DispatchCron(const Request&, Response& res) {
  Answer(res, service.DispatchCron());
}

void ApiServer::Impl::Metrics(const Request&, Response& res) {
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = options.metrics();
}

void ApiServer::Impl::Alerts(const Request&, Response& res) { Answer(res, service.Alerts()); }

void ApiServer::Impl::Doctor(const Request&, Response& res) { Answer(res, service.Doctor()); }

}  // namespace ferry::api
