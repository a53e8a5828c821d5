#include "api/event_streams.h"

#include "runs/runs.h"
#include "views/views.h"

namespace ferry::api {
namespace {

// A run's events: it ends after run.finished (or once the run is terminal and nothing more
// arrived).
class RunEventStream : public http::Stream {
 public:
  RunEventStream(Pool<Store>& stores, std::string run_id, int64_t after,
                 std::chrono::milliseconds poll, std::chrono::milliseconds keep_alive)
      : stores_(stores),
        run_id_(std::move(run_id)),
        last_seq_(after),
        poll_(poll),
        keep_alive_(keep_alive) {}

  Step Next(std::string& out, bool stopping) override {
    if (stopping) return {true, {}};
    if (!started_) {
      started_ = true;
      out += "retry: 1000\n\n";
    }
    bool finished = false;
    if (auto store = stores_.Acquire()) {
      auto events = (*store)->ListRunEvents(run_id_, last_seq_, 500);
      if (!events) {
        store->MarkBad();  // the store is away: keep the stream, try again next poll
      } else {
        for (const auto& e : *events) {
          out += "id: " + std::to_string(e.seq) + "\nevent: " + e.type +
                 "\ndata: " + DumpJson(views::RunEvent(e)) + "\n\n";
          last_seq_ = e.seq;
          if (e.type == runs::kEventFinished) finished = true;
        }
        if (events->empty() && ++empty_polls_ % 5 == 0) {
          // No run.finished seen (cancelled before a worker started it, or history trimmed):
          // end once the run is terminal and nothing more arrived.
          if (auto run = (*store)->GetRun(run_id_); run && *run && IsTerminal((*run)->status)) {
            auto rest = (*store)->ListRunEvents(run_id_, last_seq_, 500);
            if (rest && rest->empty()) finished = true;
          } else if (run && !*run) {
            finished = true;  // deleted by retention
          }
        }
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - last_write_ >= keep_alive_) out = ": keep-alive\n\n";
    if (!out.empty()) last_write_ = now;
    if (finished) return {true, {}};
    // More may be waiting when a full page came back: ask again at once.
    return {false, out.empty() ? poll_ : std::chrono::milliseconds(0)};
  }

 private:
  Pool<Store>& stores_;
  const std::string run_id_;
  int64_t last_seq_;
  const std::chrono::milliseconds poll_;
  const std::chrono::milliseconds keep_alive_;
  int empty_polls_ = 0;
  bool started_ = false;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
};

// A task's events: ReadEvents after the last id; the task record (not the stream) says when it
// is over, since a retry is not an end.
class TaskEventStream : public http::Stream {
 public:
  TaskEventStream(Pool<Broker>& brokers, std::string task_id, std::string after,
                  std::chrono::milliseconds poll, std::chrono::milliseconds keep_alive)
      : brokers_(brokers),
        task_id_(std::move(task_id)),
        last_id_(std::move(after)),
        poll_(poll),
        keep_alive_(keep_alive) {}

  Step Next(std::string& out, bool stopping) override {
    if (stopping) return {true, {}};
    if (!started_) {
      started_ = true;
      out += "retry: 1000\n\n";
    }
    bool finished = false;
    bool full = false;
    if (auto broker = brokers_.Acquire()) {
      // The status first: every event written before the task ended is then read below.
      auto task = (*broker)->GetTask(task_id_);
      auto events = (*broker)->ReadEvents(task_id_, last_id_, kPage, std::chrono::milliseconds(0));
      if (!task || !events) {
        broker->MarkBad();  // Redis is away: keep the stream, try again next poll
      } else {
        for (const auto& e : *events) {
          out += "id: " + e.id + "\nevent: " + e.type + "\ndata: " + DumpJson(views::TaskEvent(e)) +
                 "\n\n";
          last_id_ = e.id;
        }
        full = static_cast<int>(events->size()) == kPage;
        if (!full && (!*task || IsTerminal((**task).status))) finished = true;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - last_write_ >= keep_alive_) out = ": keep-alive\n\n";
    if (!out.empty()) last_write_ = now;
    if (finished) return {true, {}};
    return {false, full ? std::chrono::milliseconds(0) : poll_};
  }

 private:
  static constexpr int kPage = 100;
  Pool<Broker>& brokers_;
  const std::string task_id_;
  std::string last_id_;
  const std::chrono::milliseconds poll_;
  const std::chrono::milliseconds keep_alive_;
  bool started_ = false;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
};

}  // namespace

std::shared_ptr<http::Stream> MakeRunEventStream(Pool<Store>& stores, std::string run_id,
                                                 int64_t after, std::chrono::milliseconds poll,
                                                 std::chrono::milliseconds keep_alive) {
  return std::make_shared<RunEventStream>(stores, std::move(run_id), after, poll, keep_alive);
}

std::shared_ptr<http::Stream> MakeTaskEventStream(Pool<Broker>& brokers, std::string task_id,
                                                  std::string after, std::chrono::milliseconds poll,
                                                  std::chrono::milliseconds keep_alive) {
  return std::make_shared<TaskEventStream>(brokers, std::move(task_id), std::move(after), poll,
                                           keep_alive);
}

}  // namespace ferry::api
