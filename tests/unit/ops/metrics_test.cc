#include "ops/metrics.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>

#include "ops/sd_notify.h"

namespace ferry::ops {
namespace {

TEST(Metrics, WorkerObservationsRender) {
  Metrics m("worker");
  TaskObservation o;
  o.queue = "default";
  o.kind = "echo";
  o.outcome = "succeeded";
  o.duration_ms = 1500;
  o.wait_ms = 20;
  m.ObserveTask(o);
  o.outcome = "retried";
  m.ObserveTask(o);
  const std::string text = m.Render();
  EXPECT_NE(
      text.find(R"(ferry_worker_tasks_total{kind="echo",outcome="succeeded",queue="default"} 1)"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(R"(ferry_task_duration_seconds_bucket{kind="echo",queue="default",le="2.5"} 2)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(ferry_build_info{process="worker")"), std::string::npos);
  // Families that never got a sample are left out.
  EXPECT_EQ(text.find("ferry_webhook_requests_total"), std::string::npos);
}

TEST(Metrics, WebhookLabelsAreBounded) {
  Metrics m("server");
  for (int i = 0; i < 300; ++i) m.ObserveWebhook("wf" + std::to_string(i), 202, 0.01);
  m.ObserveWebhook("", 404, 0.001);
  const std::string text = m.Render();
  EXPECT_NE(text.find(R"(workflow="_other")"), std::string::npos);
  EXPECT_NE(text.find(R"(ferry_webhook_requests_total{code="4xx",workflow="_unknown"} 1)"),
            std::string::npos);
  EXPECT_EQ(text.find(R"(workflow="wf250")"), std::string::npos);
}

TEST(Metrics, CallbackGaugesAndCounters) {
  Metrics m("scheduler");
  m.AddGauge("ferry_scheduler_leader", "leader", [] { return 1.0; });
  m.AddCounter("ferry_scheduler_ticks_total", "ticks", [] { return 42.0; });
  const std::string text = m.Render();
  EXPECT_NE(text.find("ferry_scheduler_leader 1"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE ferry_scheduler_ticks_total counter"), std::string::npos);
  EXPECT_NE(text.find("ferry_scheduler_ticks_total 42"), std::string::npos);
}

TEST(SdNotify, SendsADatagramToNotifySocket) {
  char dir[] = "/tmp/ferry-sdnotify-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/notify";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  EXPECT_TRUE(SdNotify("READY=1"));
  char buf[64] = {};
  auto n = ::recv(fd, buf, sizeof buf - 1, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))), "READY=1");
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(SdNotify("READY=1"));
  ::close(fd);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace ferry::ops
