#include "fault_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include "core/json.h"
#include "core/time_util.h"

namespace ferry::testing {
namespace {

// "2026-11-23T10:30:15.123Z" -> epoch ms.
int64_t ParseTs(const std::string& ts) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(ts.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

}  // namespace

FerryProcess::FerryProcess(std::vector<std::string> args, std::map<std::string, std::string> env)
    : process_([&] {
        std::vector<std::string> argv = {FerryBinary()};
        argv.insert(argv.end(), args.begin(), args.end());
        env["FERRY_LOG_FORMAT"] = "json";
        return Process::Options{argv, env, "", ""};
      }()) {}

int64_t FerryProcess::FirstLog(const std::string& needle, int64_t after_ms) const {
  std::istringstream in(process_.Stderr() + process_.Stdout());
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(needle) == std::string::npos) continue;
    auto j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    int64_t ts = ParseTs(j.value("ts", ""));
    if (ts >= after_ms) return ts;
  }
  return 0;
}

int HttpStatus(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[64] = {};
      ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
      if (n > 12) status = std::atoi(buf + 9);  // "HTTP/1.1 200"
    }
  }
  ::close(fd);
  return status;
}

Producer::Producer(BrokerOptions options, std::vector<std::string> queues, std::string marker_file,
                   int tasks, int batch, std::chrono::milliseconds pause)
    : options_(std::move(options)),
      queues_(std::move(queues)),
      marker_(std::move(marker_file)),
      tasks_(tasks),
      batch_(batch),
      pause_(pause),
      acks_(static_cast<size_t>(tasks)) {}

Producer::~Producer() { Join(); }

void Producer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Producer::Join() {
  if (thread_.joinable()) thread_.join();
}

std::vector<Producer::Ack> Producer::acks() const {
  std::lock_guard lock(mu_);
  return acks_;
}

int64_t Producer::FirstAckAfter(const std::string& queue, int64_t after_ms) const {
  std::lock_guard lock(mu_);
  int64_t best = 0;
  for (const auto& a : acks_) {
    if (a.queue == queue && a.acked_ms >= after_ms && (best == 0 || a.acked_ms < best)) {
      best = a.acked_ms;
    }
  }
  return best;
}

void Producer::Run() {
  auto factory = MakeRedisBrokerFactory(options_);
  std::unique_ptr<Broker> broker;
  for (int begin = 0; begin < tasks_;) {
    int end = std::min(tasks_, begin + batch_);
    std::vector<SubmitRequest> reqs;
    for (int i = begin; i < end; ++i) {
      SubmitRequest r;
      r.kind = "shell";
      r.queue = queues_[static_cast<size_t>(i) % queues_.size()];
      r.max_attempts = 5;
      r.unique_key = "task-" + std::to_string(i);
      r.payload =
          Json{{"argv", Json::array({"sh", "-c", "echo $0 >> " + marker_, std::to_string(i)})}};
      reqs.push_back(std::move(r));
    }
    if (!broker) {
      auto b = factory->Open();
      if (b) broker = std::move(*b);
    }
    auto done = broker ? broker->SubmitBatch(reqs)
                       : Result<std::vector<SubmitResult>>(Fail(ErrorCode::kUnavailable, "no"));
    if (!done) {
      // Not acknowledged: submit the same batch again (the unique keys make that safe).
      ++failed_batches_;
      if (done.error().code != ErrorCode::kInvalidArgument) broker.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    const int64_t now = WallNowMs();
    {
      std::lock_guard lock(mu_);
      for (int i = begin; i < end; ++i) {
        auto& a = acks_[static_cast<size_t>(i)];
        a.id = (*done)[static_cast<size_t>(i - begin)].id;
        a.queue = reqs[static_cast<size_t>(i - begin)].queue;
        a.acked_ms = now;
      }
    }
    acknowledged_ += end - begin;
    begin = end;
    std::this_thread::sleep_for(pause_);
  }
}

std::string Audit::Summary() const {
  std::string s = "acknowledged " + std::to_string(acknowledged) + ", succeeded " +
                  std::to_string(succeeded) + ", lost " + std::to_string(lost) + ", unfinished " +
                  std::to_string(unfinished) + ", executed twice " +
                  std::to_string(executed_twice) + ", succeeded without execution " +
                  std::to_string(never_executed);
  if (!lost_ack_before_kill_ms.empty()) {
    auto [lo, hi] =
        std::minmax_element(lost_ack_before_kill_ms.begin(), lost_ack_before_kill_ms.end());
    s += " (lost tasks were acknowledged " + std::to_string(*lo) + " to " + std::to_string(*hi) +
         " ms before the kill)";
  }
  return s;
}

Audit AuditTasks(Broker& broker, const std::vector<Producer::Ack>& acks,
                 const std::string& marker_file, int64_t kill_ms) {
  std::map<int, int> runs;
  std::ifstream in(marker_file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) ++runs[std::atoi(line.c_str())];
  }
  Audit a;
  for (size_t i = 0; i < acks.size(); ++i) {
    if (acks[i].id.empty()) continue;
    ++a.acknowledged;
    int executions = runs.count(static_cast<int>(i)) ? runs[static_cast<int>(i)] : 0;
    if (executions > 1) ++a.executed_twice;
    auto rec = broker.GetTask(acks[i].id);
    if (!rec || !rec->has_value()) {
      ++a.lost;
      a.lost_ack_before_kill_ms.push_back(kill_ms - acks[i].acked_ms);
      continue;
    }
    if ((*rec)->status == TaskStatus::kSucceeded) {
      ++a.succeeded;
      if (executions == 0) ++a.never_executed;
    } else {
      ++a.unfinished;
    }
  }
  return a;
}

bool WaitUntilSettled(Broker& broker, const std::vector<std::string>& queues,
                      std::chrono::milliseconds timeout) {
  return Eventually(
      [&] {
        for (const auto& q : queues) {
          auto st = broker.GetQueueStats(q);
          if (!st || st->pending + st->running + st->scheduled > 0) return false;
        }
        return true;
      },
      timeout);
}

}  // namespace ferry::testing
