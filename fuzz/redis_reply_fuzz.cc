// The Redis reply path Ferry owns (src/broker/redis/): the Reader with its element and size
// limits (hiredis parses the RESP), the reply accessors and error mapping, and the codec that
// turns field lists, stream ids and INFO text into Broker records. Input: byte 0 picks the mode
// and chunk size. Even modes feed the rest as server bytes in chunks; odd modes split the rest
// into command arguments at '\n', encode them (Args) and check the Reader reads the same
// arguments back.
#include <string>
#include <vector>

#include "broker/redis/redis_cluster.h"
#include "broker/redis/redis_codec.h"
#include "broker/redis/redis_protocol.h"
#include "fuzz_check.h"

namespace {

namespace rb = ferry::redis_broker;
using ferry::fuzz::Check;

std::string Str(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) return std::to_string(r.integer);
  return std::string(rb::ReplyText(r));
}

// What the broker does with a reply: text, integers, errors, and arrays read as field lists,
// task records, worker hashes and stream entries.
void Use(const redisReply& r, int depth) {
  Check(depth <= 16, "replies nest a bounded number of levels");
  const std::string text = Str(r);
  (void)rb::ReplyInt(r);
  if (rb::IsError(r)) {
    const ferry::Error e = rb::ReplyError(r);
    Check(!e.message.empty(), "an error reply maps to a message");
    (void)rb::ErrorIs(r, "MOVED");
  }
  if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS) {
    (void)rb::ParseInfo(text);
    (void)rb::StreamIdMs(text);
    (void)rb::ToInt(text, -1);
    (void)rb::SplitList(text);
    const int slot = rb::KeySlot(text);
    Check(slot >= 0 && slot < 16384, "key slots are 0..16383");
  }
  if (r.type != REDIS_REPLY_ARRAY) return;
  rb::FieldList fields;
  for (size_t i = 0; i + 1 < r.elements; i += 2) {
    fields.emplace_back(Str(*r.element[i]), Str(*r.element[i + 1]));
  }
  (void)rb::RecordFromFields(text, fields);
  (void)rb::WorkerFromFields(fields, 1700000000000);
  (void)rb::DerivedEvents(fields);
  if (r.elements == 2 && r.element[1]->type == REDIS_REPLY_ARRAY) {
    (void)rb::EventFromEntry(Str(*r.element[0]), fields);
  }
  for (size_t i = 0; i + 1 < r.elements; ++i) {
    const std::string a = Str(*r.element[i]);
    const std::string b = Str(*r.element[i + 1]);
    Check(!(rb::StreamIdLess(a, b) && rb::StreamIdLess(b, a)), "StreamIdLess is asymmetric");
  }
  for (size_t i = 0; i < r.elements; ++i) Use(*r.element[i], depth + 1);
}

void FeedReplies(std::string_view bytes, size_t chunk) {
  rb::ReplyLimits limits;
  limits.max_elements = 64;
  limits.max_pending_bytes = 1 << 16;
  rb::Reader reader(limits);
  while (true) {
    const std::string_view piece = bytes.substr(0, chunk);
    bytes.remove_prefix(piece.size());
    if (!reader.Feed(piece.data(), piece.size())) return;
    while (true) {
      auto reply = reader.Next();
      if (!reply) return;
      if (!*reply) break;
      Use(**reply, 0);
    }
    if (bytes.empty()) return;
  }
}

void RoundTripArgs(std::string_view text) {
  rb::Args args;
  while (true) {
    const size_t nl = text.find('\n');
    args.Add(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  (void)rb::RoutingKey(args);
  std::string encoded;
  args.AppendEncoded(encoded);
  rb::Reader reader;
  Check(reader.Feed(encoded.data(), encoded.size()).has_value(), "an encoded command reads");
  auto reply = reader.Next();
  Check(reply.has_value() && *reply != nullptr, "an encoded command is one complete array");
  const redisReply& r = **reply;
  Check(r.type == REDIS_REPLY_ARRAY && r.elements == args.size(), "one element per argument");
  for (size_t i = 0; i < args.size(); ++i) {
    Check(rb::ReplyText(*r.element[i]) == args.at(i), "arguments read back unchanged");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = ferry::fuzz::Text(data + 1, size - 1);
  if ((data[0] & 1) != 0) {
    RoundTripArgs(rest);
  } else {
    FeedReplies(rest, size_t{1} + (data[0] >> 1));
  }
  return 0;
}
