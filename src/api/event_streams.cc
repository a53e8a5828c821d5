#include "api/event_streams.h"

#include <charconv>
#include <functional>
#include <utility>

namespace ferry::api {
namespace {

// The SSE framing both streams share: the reconnect hint first, one `id:/event:/data:` block
// per event, a keep-alive comment when nothing was written for a while, and the next poll at
// once while full pages keep coming.
class PolledEventStream : public http::Stream {
 public:
  PolledEventStream(std::chrono::milliseconds poll, std::chrono::milliseconds keep_alive,
                    std::function<bool()> still_granted)
      : poll_(poll), keep_alive_(keep_alive), still_granted_(std::move(still_granted)) {}

  Step Next(std::string& out, bool stopping) final {
    if (stopping) return {true, {}};
    // The token that opened the stream, asked again once a second: a revoked one ends it.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_grant_check_ >= kGrantCheckEvery) {
      last_grant_check_ = now;
      if (!still_granted_()) {
        out += ": the token was revoked or lost its scope\n\n";
        return {true, {}};
      }
    }
    if (!started_) {
      started_ = true;
      out += "retry: 1000\n\n";
    }
    const Read read = ReadNew(out);
    if (out.empty() && now - last_write_ >= keep_alive_) out = ": keep-alive\n\n";
    if (!out.empty()) last_write_ = now;
    if (read.finished) return {true, {}};
    return {false, read.full_page ? std::chrono::milliseconds(0) : poll_};
  }

 protected:
  struct Read {
    bool finished = false;   // the run or task has ended and its last event was written
    bool full_page = false;  // more may be waiting: poll again at once
  };
  // Appends what is new since the last call (AppendEvent); a source that is away (store or
  // Redis down) writes nothing and the stream tries again next poll.
  virtual Read ReadNew(std::string& out) = 0;

  static void AppendEvent(std::string& out, const std::string& id, const std::string& type,
                          const Json& data) {
    out += "id: " + id + "\nevent: " + type + "\ndata: " + DumpJson(data) + "\n\n";
  }

 private:
  static constexpr std::chrono::seconds kGrantCheckEvery{1};

  const std::chrono::milliseconds poll_;
  const std::chrono::milliseconds keep_alive_;
  const std::function<bool()> still_granted_;
  std::chrono::steady_clock::time_point last_grant_check_ = std::chrono::steady_clock::now();
  bool started_ = false;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
};

// A run's or a task's events, a page per step; `step` reads the next page after a cursor. A
// source that is away (store or Redis down) writes nothing and the stream tries again next poll;
// a run or task that is gone (deleted by retention) ends the stream.
class ServiceEventStream final : public PolledEventStream {
 public:
  using StepFn = std::function<Result<service::LocalService::EventStep>(const std::string& after)>;

  ServiceEventStream(StepFn step, std::string after, std::chrono::milliseconds poll,
                     std::chrono::milliseconds keep_alive, std::function<bool()> still_granted)
      : PolledEventStream(poll, keep_alive, std::move(still_granted)),
        step_(std::move(step)),
        after_(std::move(after)) {}

 private:
  Read ReadNew(std::string& out) override {
    Read read;
    auto step = step_(after_);
    if (!step) {
      read.finished = step.error().code == ErrorCode::kNotFound;
      return read;
    }
    for (const auto& e : step->events) {
      AppendEvent(out, e.id, e.type, e.view);
      after_ = e.id;
    }
    read.full_page = step->full;
    read.finished = step->ended;
    return read;
  }

  StepFn step_;
  std::string after_;
};

}  // namespace

std::shared_ptr<http::Stream> MakeRunEventStream(service::LocalService& service, std::string run_id,
                                                 int64_t after, std::chrono::milliseconds poll,
                                                 std::chrono::milliseconds keep_alive,
                                                 std::function<bool()> still_granted) {
  constexpr int kPage = 500;
  auto step = [&service, id = std::move(run_id)](const std::string& cursor) {
    int64_t seq = 0;  // the cursor is a seq this stream wrote (std::to_string): it parses
    std::from_chars(cursor.data(), cursor.data() + cursor.size(), seq);
    return service.RunEventStep(id, seq, kPage);
  };
  return std::make_shared<ServiceEventStream>(std::move(step), std::to_string(after), poll,
                                              keep_alive, std::move(still_granted));
}

std::shared_ptr<http::Stream> MakeTaskEventStream(service::LocalService& service,
                                                  std::string task_id, std::string after,
                                                  std::chrono::milliseconds poll,
                                                  std::chrono::milliseconds keep_alive,
                                                  std::function<bool()> still_granted) {
  constexpr int kPage = 100;
  auto step = [&service, id = std::move(task_id)](const std::string& cursor) {
    return service.TaskEventStep(id, cursor, kPage, std::chrono::milliseconds(0));
  };
  return std::make_shared<ServiceEventStream>(std::move(step), std::move(after), poll, keep_alive,
                                              std::move(still_granted));
}

}  // namespace ferry::api
