#include "api/event_streams.h"

#include "runs/runs.h"
#include "views/views.h"

namespace ferry::api {
namespace {

// The SSE framing both streams share: the reconnect hint first, one `id:/event:/data:` block
// per event, a keep-alive comment when nothing was written for a while, and the next poll at
// once while full pages keep coming.
class PolledEventStream : public http::Stream {
 public:
  PolledEventStream(std::chrono::milliseconds poll, std::chrono::milliseconds keep_alive)
      : poll_(poll), keep_alive_(keep_alive) {}

  Step Next(std::string& out, bool stopping) final {
    if (stopping) return {true, {}};
    if (!started_) {
      started_ = true;
      out += "retry: 1000\n\n";
    }
    const Read read = ReadNew(out);
    const auto now = std::chrono::steady_clock::now();
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
  const std::chrono::milliseconds poll_;
  const std::chrono::milliseconds keep_alive_;
  bool started_ = false;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
};

// A run's events: it ends after run.finished (or once the run is terminal and nothing more
// arrived).
class RunEventStream final : public PolledEventStream {
 public:
  RunEventStream(Pool<Store>& stores, std::string run_id, int64_t after,
                 std::chrono::milliseconds poll, std::chrono::milliseconds keep_alive)
      : PolledEventStream(poll, keep_alive),
        stores_(stores),
        run_id_(std::move(run_id)),
        last_seq_(after) {}

 private:
  static constexpr int kPage = 500;

  Read ReadNew(std::string& out) override {
    Read read;
    auto store = stores_.Acquire();
    if (!store) return read;
    auto events = (*store)->ListRunEvents(run_id_, last_seq_, kPage);
    if (!events) {
      store->MarkBad();
      return read;
    }
    for (const auto& e : *events) {
      AppendEvent(out, std::to_string(e.seq), e.type, views::RunEvent(e));
      last_seq_ = e.seq;
      if (e.type == runs::kEventFinished) read.finished = true;
    }
    read.full_page = static_cast<int>(events->size()) == kPage;
    if (events->empty() && ++empty_polls_ % 5 == 0) {
      // No run.finished seen (cancelled before a worker started it, or history trimmed): end
      // once the run is terminal and nothing more arrived.
      if (auto run = (*store)->GetRun(run_id_); run && *run && IsTerminal((*run)->status)) {
        auto rest = (*store)->ListRunEvents(run_id_, last_seq_, kPage);
        if (rest && rest->empty()) read.finished = true;
      } else if (run && !*run) {
        read.finished = true;  // deleted by retention
      }
    }
    return read;
  }

  Pool<Store>& stores_;
  const std::string run_id_;
  int64_t last_seq_;
  int empty_polls_ = 0;
};

// A task's events: ReadEvents after the last id; the task record (not the stream) says when it
// is over, since a retry is not an end.
class TaskEventStream final : public PolledEventStream {
 public:
  TaskEventStream(Pool<Broker>& brokers, std::string task_id, std::string after,
                  std::chrono::milliseconds poll, std::chrono::milliseconds keep_alive)
      : PolledEventStream(poll, keep_alive),
        brokers_(brokers),
        task_id_(std::move(task_id)),
        last_id_(std::move(after)) {}

 private:
  static constexpr int kPage = 100;

  Read ReadNew(std::string& out) override {
    Read read;
    auto broker = brokers_.Acquire();
    if (!broker) return read;
    // The status first: every event written before the task ended is then read below.
    auto task = (*broker)->GetTask(task_id_);
    auto events = (*broker)->ReadEvents(task_id_, last_id_, kPage, std::chrono::milliseconds(0));
    if (!task || !events) {
      broker->MarkBad();
      return read;
    }
    for (const auto& e : *events) {
      AppendEvent(out, e.id, e.type, views::TaskEvent(e));
      last_id_ = e.id;
    }
    read.full_page = static_cast<int>(events->size()) == kPage;
    read.finished = !read.full_page && (!*task || IsTerminal((**task).status));
    return read;
  }

  Pool<Broker>& brokers_;
  const std::string task_id_;
  std::string last_id_;
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
