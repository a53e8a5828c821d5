#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/redis/redis_codec.h"
#include "broker/task_cursor.h"
#include "core/ids.h"

namespace ferry {
namespace {

using redis_broker::FieldList;

TEST(BrokerValidation, QueueNames) {
  EXPECT_TRUE(ValidateQueueName("default"));
  EXPECT_TRUE(ValidateQueueName("a.b-c_9"));
  EXPECT_TRUE(ValidateQueueName(std::string(64, 'q')));
  // Dots are fine but for the two path segments a URL resolves away (`queues/..` is `/api/v1/`
  // to a browser or libcurl): such a queue could be made but never inspected through the API.
  EXPECT_TRUE(ValidateQueueName("..."));
  EXPECT_TRUE(ValidateQueueName(".a"));
  EXPECT_TRUE(ValidateQueueName("a.."));
  for (const std::string& bad :
       std::vector<std::string>{"", "a b", "x{y}", "q:1", std::string(65, 'q'), "é", ".", ".."}) {
    auto st = ValidateQueueName(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(ValidateQueueName("..").error().message,
            "bad queue name '..': '.' and '..' are path steps in a URL, not names");
}

TEST(BrokerValidation, SubmitRequests) {
  BrokerOptions options;
  options.max_payload_bytes = 32;
  SubmitRequest ok;
  ok.kind = "echo";
  EXPECT_TRUE(ValidateSubmit(ok, options));

  SubmitRequest no_kind = ok;
  no_kind.kind = "";
  EXPECT_EQ(ValidateSubmit(no_kind, options).error().code, ErrorCode::kInvalidArgument);

  SubmitRequest zero_attempts = ok;
  zero_attempts.max_attempts = 0;
  EXPECT_EQ(ValidateSubmit(zero_attempts, options).error().code, ErrorCode::kInvalidArgument);

  SubmitRequest big = ok;
  big.payload = Json{{"text", std::string(100, 'x')}};
  auto st = ValidateSubmit(big, options);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kTooLarge);
  EXPECT_NE(st.error().message.find("over the limit of 32"), std::string::npos);
}

// Kinds and unique keys are printed in lists and tables as they are: no control characters (an
// escape sequence would paint over the operator's terminal). Printable UTF-8 and spaces pass.
TEST(BrokerValidation, KindsAndUniqueKeysHoldNoControlCharacters) {
  BrokerOptions options;
  SubmitRequest ok;
  ok.kind = "résumé render";
  ok.unique_key = "order 42 ~";
  EXPECT_TRUE(ValidateSubmit(ok, options));
  for (std::string bad : {std::string("x\x1b[2J"), std::string("a\nb"), std::string("a\x7f"),
                          std::string("a\0b", 3), std::string("\t")}) {
    SubmitRequest kind = ok;
    kind.kind = bad;
    auto st = ValidateSubmit(kind, options);
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(st.error().message.find("task kind must not hold control characters"),
              std::string::npos)
        << st.error().message;
    SubmitRequest key = ok;
    key.unique_key = bad;
    auto k = ValidateSubmit(key, options);
    ASSERT_FALSE(k) << bad;
    EXPECT_NE(k.error().message.find("unique key must not hold control characters"),
              std::string::npos)
        << k.error().message;
  }
  SubmitRequest esc = ok;
  esc.kind = "x\x1b[2J";
  EXPECT_NE(ValidateSubmit(esc, options).error().message.find("(byte 0x1b at offset 1)"),
            std::string::npos);
}

// Each limit at its edge and one past it.
TEST(BrokerValidation, SubmitLimitsAtTheEdge) {
  BrokerOptions options;
  options.max_payload_bytes = 32;
  SubmitRequest ok;
  ok.kind = "echo";
  auto valid = [&](auto change) {
    SubmitRequest r = ok;
    change(r);
    return static_cast<bool>(ValidateSubmit(r, options));
  };
  EXPECT_TRUE(valid([](SubmitRequest& r) { r.kind = std::string(128, 'k'); }));
  EXPECT_FALSE(valid([](SubmitRequest& r) { r.kind = std::string(129, 'k'); }));
  EXPECT_TRUE(valid([](SubmitRequest& r) { r.max_attempts = 1000; }));
  EXPECT_FALSE(valid([](SubmitRequest& r) { r.max_attempts = 1001; }));
  EXPECT_TRUE(valid([](SubmitRequest& r) { r.max_attempts = 1; }));
  EXPECT_FALSE(valid([](SubmitRequest& r) { r.max_attempts = 0; }));
  EXPECT_TRUE(valid([](SubmitRequest& r) { r.timeout = std::chrono::milliseconds(0); }));
  EXPECT_FALSE(valid([](SubmitRequest& r) { r.timeout = std::chrono::milliseconds(-1); }));
  EXPECT_TRUE(valid([](SubmitRequest& r) { r.unique_key = std::string(512, 'u'); }));
  EXPECT_FALSE(valid([](SubmitRequest& r) { r.unique_key = std::string(513, 'u'); }));
  // {"t":"..."} is 8 bytes plus the text.
  EXPECT_TRUE(valid([](SubmitRequest& r) { r.payload = Json{{"t", std::string(24, 'x')}}; }));
  EXPECT_FALSE(valid([](SubmitRequest& r) { r.payload = Json{{"t", std::string(25, 'x')}}; }));
}

TEST(BrokerStatus, NamesRoundTrip) {
  for (auto s :
       {TaskStatus::kPending, TaskStatus::kScheduled, TaskStatus::kRunning, TaskStatus::kRetrying,
        TaskStatus::kSucceeded, TaskStatus::kFailed, TaskStatus::kCancelled}) {
    EXPECT_EQ(ParseTaskStatus(TaskStatusName(s)), s);
  }
  EXPECT_EQ(ParseTaskStatus("RUNNING"), TaskStatus::kRunning);
  EXPECT_EQ(ParseTaskStatus("dead"), TaskStatus::kFailed);
  EXPECT_FALSE(ParseTaskStatus("bogus"));
  EXPECT_TRUE(IsTerminal(TaskStatus::kCancelled));
  EXPECT_FALSE(IsTerminal(TaskStatus::kRetrying));
}

// Every event type the broker's scripts write is a lifecycle type; near misses are not.
TEST(BrokerStatus, LifecycleEventTypesAreTheBrokersOwn) {
  for (const char* t : {"submitted", "running", "pending", "cancel_requested", "retrying",
                        "succeeded", "failed", "cancelled", "scheduled", "Succeeded", "FAILED"}) {
    EXPECT_TRUE(IsLifecycleEventType(t)) << t;
  }
  for (const char* t : {"progress", "log", "succeeded2", "succeeded.", "cancel-requested", "submit",
                        "", "node.finished"}) {
    EXPECT_FALSE(IsLifecycleEventType(t)) << t;
  }
}

// An index position is a stream id the broker hands to Redis as it is: both parts decimal and
// within range (the sequence number up to 2^64-1), and never 0-0 (no entry has it), or the
// cursor is refused here instead of by Redis.
TEST(TaskCursor, AnIndexPositionIsAStreamId) {
  for (const std::string good :
       {"default~1-0", "default~0-1", "default~=1796646620585-0",
        "default~1796646620585-18446744073709551615", "default~9223372036854775807-0"}) {
    auto c = DecodeTaskCursor(good, ListingOf::kIndex);
    ASSERT_TRUE(c) << good << ": " << c.error().message;
    EXPECT_EQ(EncodeTaskCursor(*c), good);
  }
  for (const std::string& bad : std::vector<std::string>{
           "default~0-0", "default~=0-0", "default~1796646620585-ABC",
           "default~1796646620585-18446744073709551616", "default~1-99999999999999999999",
           "default~9223372036854775807-99999999999999999999", "default~9223372036854775808-0",
           "default~1--1", "default~1-+1", "default~1-1a", "default~1-" + NewId()}) {
    auto c = DecodeTaskCursor(bad, ListingOf::kIndex);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(c.error().message.rfind("malformed cursor (", 0), 0u) << c.error().message;
    EXPECT_FALSE(CheckTaskCursor(bad, ListingOf::kIndex)) << bad;
  }
}

// A dead letter's position is its score and its task id; a stream id is not one.
TEST(TaskCursor, ADeadLetterPositionIsAScoreAndATaskId) {
  const std::string id = NewId();
  for (const std::string& good : {"default~1796646620585-" + id, "default~=0-" + id}) {
    auto c = DecodeTaskCursor(good, ListingOf::kDeadLetters);
    ASSERT_TRUE(c) << good << ": " << c.error().message;
    EXPECT_EQ(EncodeTaskCursor(*c), good);
  }
  for (const std::string& bad :
       std::vector<std::string>{"default~0-0", "default~1796646620585-ABC", "default~1-1",
                                "default~1-" + id.substr(1), "default~1-" + id + "0"}) {
    auto c = DecodeTaskCursor(bad, ListingOf::kDeadLetters);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().message.rfind("malformed cursor (", 0), 0u) << c.error().message;
  }
  EXPECT_EQ(ListingFor(TaskStatus::kFailed), ListingOf::kDeadLetters);
  EXPECT_EQ(ListingFor(std::nullopt), ListingOf::kIndex);
  EXPECT_EQ(ListingFor(TaskStatus::kSucceeded), ListingOf::kIndex);
}

TEST(RedisKeys, CarryTheQueueHashTag) {
  EXPECT_EQ(redis_broker::QueuePrefix("ferry", "default"), "ferry:{default}");
  EXPECT_EQ(redis_broker::StreamKey("ferry", "q"), "ferry:{q}:stream");
  EXPECT_EQ(redis_broker::TaskKey("ferry", "q", "ID1"), "ferry:{q}:task:ID1");
  EXPECT_EQ(redis_broker::EventsKey("ferry", "q", "ID1"), "ferry:{q}:events:ID1");
  EXPECT_EQ(redis_broker::DelayedKey("p", "q"), "p:{q}:delayed");
  EXPECT_EQ(redis_broker::DeadKey("p", "q"), "p:{q}:dead");
  EXPECT_EQ(redis_broker::StatsKey("p", "q"), "p:{q}:stats");
  EXPECT_EQ(redis_broker::IndexKey("p", "q"), "p:{q}:index");
  EXPECT_EQ(redis_broker::QueuesKey("p"), "p:queues");
  EXPECT_EQ(redis_broker::WorkersKey("p"), "p:workers");
  EXPECT_EQ(redis_broker::WorkerKey("p", "w1"), "p:worker:w1");
}

TEST(RedisCodec, StreamIdsAndInts) {
  EXPECT_EQ(redis_broker::StreamIdMs("1700000000123-7"), 1700000000123);
  EXPECT_EQ(redis_broker::StreamIdMs("garbage"), 0);
  EXPECT_EQ(redis_broker::StreamIdMs(""), 0);
  EXPECT_EQ(redis_broker::ToInt("42"), 42);
  EXPECT_EQ(redis_broker::ToInt("-3"), -3);
  EXPECT_EQ(redis_broker::ToInt("4x", 9), 9);
  EXPECT_EQ(redis_broker::ToInt("", 7), 7);
}

TEST(RedisCodec, RecordFromFields) {
  FieldList fields = {{"queue", "q"},        {"kind", "echo"},     {"payload", "{\"a\":1}"},
                      {"status", "running"}, {"attempts", "2"},    {"max_attempts", "5"},
                      {"reclaims", "1"},     {"epoch", "3"},       {"timeout_ms", "1000"},
                      {"worker", "w1"},      {"unique_key", "u"},  {"created_ms", "10"},
                      {"eta_ms", "11"},      {"started_ms", "12"}, {"finished_ms", "13"},
                      {"result", "null"},    {"error", "boom"},    {"cancel_requested", "1"},
                      {"entry", "1-0"}};
  TaskRecord r = redis_broker::RecordFromFields("ID", fields);
  EXPECT_EQ(r.id, "ID");
  EXPECT_EQ(r.queue, "q");
  EXPECT_EQ(r.kind, "echo");
  EXPECT_EQ(r.payload, "{\"a\":1}");
  EXPECT_EQ(r.status, TaskStatus::kRunning);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.max_attempts, 5);
  EXPECT_EQ(r.reclaims, 1);
  EXPECT_EQ(r.epoch, 3);
  EXPECT_EQ(r.timeout_ms, 1000);
  EXPECT_EQ(r.worker, "w1");
  EXPECT_EQ(r.unique_key, "u");
  EXPECT_EQ(r.created_ms, 10);
  EXPECT_EQ(r.eta_ms, 11);
  EXPECT_EQ(r.started_ms, 12);
  EXPECT_EQ(r.finished_ms, 13);
  EXPECT_EQ(r.result, "null");
  EXPECT_EQ(r.error, "boom");
  EXPECT_TRUE(r.cancel_requested);

  TaskRecord fresh = redis_broker::RecordFromFields("X", {{"status", "pending"}});
  EXPECT_EQ(fresh.attempts, 0);
  EXPECT_EQ(fresh.epoch, 0);
  EXPECT_FALSE(fresh.cancel_requested);
}

TEST(RedisCodec, WorkerRoundTripAndLiveness) {
  WorkerInfo w;
  w.id = "host-1-abcd";
  w.status = "draining";
  w.hostname = "host";
  w.pid = 1234;
  w.version = "0.1.0";
  w.queues = {"high", "default"};
  w.concurrency = 8;
  w.tasks_processed = 100;
  w.tasks_failed = 3;
  w.current_tasks = {"T1", "T2"};
  w.started_ms = 1000;
  const int64_t now = 50'000;
  auto fields = redis_broker::WorkerToFields(w, 30'000, now);
  WorkerInfo back = redis_broker::WorkerFromFields(fields, now + 1000);
  EXPECT_EQ(back.id, w.id);
  EXPECT_EQ(back.status, "draining");
  EXPECT_EQ(back.hostname, "host");
  EXPECT_EQ(back.pid, 1234);
  EXPECT_EQ(back.version, "0.1.0");
  EXPECT_EQ(back.queues, w.queues);
  EXPECT_EQ(back.concurrency, 8);
  EXPECT_EQ(back.tasks_processed, 100);
  EXPECT_EQ(back.tasks_failed, 3);
  EXPECT_EQ(back.current_tasks, w.current_tasks);
  EXPECT_EQ(back.started_ms, 1000);
  EXPECT_EQ(back.last_heartbeat_ms, now);
  EXPECT_TRUE(back.alive);
  EXPECT_FALSE(redis_broker::WorkerFromFields(fields, now + 30'000).alive);
  // A clean shutdown's last record: fresh, but the worker is gone.
  w.status = "stopped";
  auto stopped = redis_broker::WorkerToFields(w, 30'000, now);
  EXPECT_FALSE(redis_broker::WorkerFromFields(stopped, now + 1000).alive);
}

TEST(RedisCodec, Lists) {
  EXPECT_EQ(redis_broker::SplitList("a,b,,c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(redis_broker::SplitList("").empty());
  EXPECT_EQ(redis_broker::JoinList({"a", "", "b"}), "a,b");
}

TEST(RedisCodec, Events) {
  TaskEvent e = redis_broker::EventFromEntry("1700000000000-1",
                                             {{"type", "progress"}, {"data", "{\"pct\":50}"}});
  EXPECT_EQ(e.id, "1700000000000-1");
  EXPECT_EQ(e.ts_ms, 1700000000000);
  EXPECT_EQ(e.type, "progress");
  EXPECT_EQ(e.data["pct"], 50);
  TaskEvent raw = redis_broker::EventFromEntry("1-0", {{"type", "log"}, {"data", "not json"}});
  EXPECT_EQ(raw.data, Json("not json"));
  // A handler's error holding a byte that is not UTF-8 (its stderr), as the scripts store it:
  // still an object, the byte shown as U+FFFD (it was the whole text as one string).
  TaskEvent bytes = redis_broker::EventFromEntry(
      "1-1", {{"type", "failed"}, {"data", "{\"attempt\":1,\"error\":\"oops \xFF here\"}"}});
  ASSERT_TRUE(bytes.data.is_object()) << bytes.data.dump();
  EXPECT_EQ(bytes.data["error"], "oops \xEF\xBF\xBD here");
  EXPECT_EQ(bytes.data["attempt"], 1);
  // Not JSON even so: the text, as before.
  TaskEvent broken = redis_broker::EventFromEntry("1-2", {{"type", "log"}, {"data", "{\xFF"}});
  EXPECT_TRUE(broken.data.is_string());
}

TEST(RedisCodec, StreamIdOrder) {
  EXPECT_TRUE(redis_broker::StreamIdLess("0", "1-0"));
  EXPECT_TRUE(redis_broker::StreamIdLess("5-1", "5-2"));
  EXPECT_TRUE(redis_broker::StreamIdLess("5-9", "10-0"));  // numeric, not lexicographic
  // Unsigned 64-bit parts, as Redis's: past INT64_MAX is not 0.
  EXPECT_TRUE(redis_broker::StreamIdLess("9223372036854775807-0", "9223372036854775808-0"));
  EXPECT_FALSE(redis_broker::StreamIdLess("18446744073709551615-0", "1796516338309-1"));
  EXPECT_TRUE(redis_broker::StreamIdLess("1-9223372036854775807", "1-18446744073709551615"));
  EXPECT_FALSE(redis_broker::StreamIdLess("5-2", "5-2"));
  EXPECT_FALSE(redis_broker::StreamIdLess("6-0", "5-9"));
}

TEST(RedisCodec, DerivedEvents) {
  EXPECT_TRUE(redis_broker::DerivedEvents({}).empty());
  auto pending = redis_broker::DerivedEvents({{"status", "pending"}, {"created_ms", "100"}});
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, "100-1");
  EXPECT_EQ(pending[0].type, "submitted");

  auto done = redis_broker::DerivedEvents({{"status", "succeeded"},
                                           {"created_ms", "100"},
                                           {"started_ms", "90"},  // another host's clock
                                           {"finished_ms", "120"},
                                           {"worker", "w1"},
                                           {"attempts", "1"},
                                           {"epoch", "1"}});
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[1].id, "100-2");
  EXPECT_EQ(done[1].type, "running");
  EXPECT_EQ(done[1].data, (Json{{"worker", "w1"}, {"attempt", 1}, {"epoch", 1}}));
  EXPECT_EQ(done[2].id, "120-3");
  EXPECT_EQ(done[2].type, "succeeded");
}

TEST(RedisCodec, ParseInfo) {
  auto info = redis_broker::ParseInfo(
      "# Server\r\nredis_version:7.0.15\r\nos:Linux\r\n\r\n# Persistence\r\naof_enabled:1\r\n"
      "# Memory\r\nmaxmemory_policy:noeviction\r\n");
  EXPECT_EQ(info["redis_version"], "7.0.15");
  EXPECT_EQ(info["aof_enabled"], "1");
  EXPECT_EQ(info["maxmemory_policy"], "noeviction");
  EXPECT_EQ(info.count("# Server"), 0u);
}

}  // namespace
}  // namespace ferry
