// The fault tests' load and audit: `ferry` processes with JSON logs, a producer that submits
// numbered shell tasks (each execution appends its number to a file) until every one is
// acknowledged, and an audit of what Redis and the file say afterwards.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker.h"
#include "harness.h"

namespace ferry::testing {

// A `ferry ...` process with --log-format json; its logs can be searched by time.
class FerryProcess {
 public:
  FerryProcess(std::vector<std::string> args, std::map<std::string, std::string> env);
  // Wall time (epoch ms) of the first log line at or after `after_ms` whose message contains
  // `needle`; 0 when there is none.
  int64_t FirstLog(const std::string& needle, int64_t after_ms) const;
  bool WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) {
    return process_.WaitForOutput(needle, timeout);
  }
  Process& process() { return process_; }

 private:
  Process process_;
};

// GET http://127.0.0.1:port/path; the status code, 0 when no answer.
int HttpStatus(int port, const std::string& path);

// One producer thread: n tasks of kind "shell" (queue = queues[i % size]), in batches, each
// with unique key "<prefix>-<i>" so a batch retried after an error cannot create a second task.
class Producer {
 public:
  Producer(BrokerOptions options, std::vector<std::string> queues, std::string marker_file,
           int tasks, int batch, std::chrono::milliseconds pause);
  ~Producer();
  void Start();
  void Join();
  int acknowledged() const { return acknowledged_.load(); }
  // Per task: its id and when its submission was acknowledged (epoch ms); "" / 0 when not.
  struct Ack {
    std::string id;
    std::string queue;
    int64_t acked_ms = 0;
  };
  std::vector<Ack> acks() const;
  // Wall time of the first acknowledgement to `queue` at or after `after_ms`; 0 when none.
  int64_t FirstAckAfter(const std::string& queue, int64_t after_ms) const;
  int failed_batches() const { return failed_batches_.load(); }

 private:
  void Run();
  BrokerOptions options_;
  std::vector<std::string> queues_;
  std::string marker_;
  int tasks_;
  int batch_;
  std::chrono::milliseconds pause_;
  std::thread thread_;
  std::atomic<int> acknowledged_{0};
  std::atomic<int> failed_batches_{0};
  mutable std::mutex mu_;
  std::vector<Ack> acks_;  // Guarded by mu_
};

struct Audit {
  int acknowledged = 0;
  int succeeded = 0;       // record says succeeded
  int lost = 0;            // acknowledged, but the record is gone
  int unfinished = 0;      // record exists but not succeeded
  int executed_twice = 0;  // tasks whose handler ran more than once
  int never_executed = 0;  // succeeded but no execution recorded (must stay 0)
  std::vector<int64_t> lost_ack_before_kill_ms;  // for each lost task: kill time - its ack time
  std::string Summary() const;
};

// Reads every acknowledged task's record through `broker` and the marker file's executions.
Audit AuditTasks(Broker& broker, const std::vector<Producer::Ack>& acks,
                 const std::string& marker_file, int64_t kill_ms);

// Waits until no task of `queues` is pending, running or waiting for a retry.
bool WaitUntilSettled(Broker& broker, const std::vector<std::string>& queues,
                      std::chrono::milliseconds timeout);

}  // namespace ferry::testing
