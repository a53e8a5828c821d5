// Submits one "resize" task and prints its result:
//   ./resize-submit redis://127.0.0.1:6379 640 [QUEUE]
// QUEUE (default "default") must be served by resize-worker alone: a worker that has no handler
// for "resize" (`ferry dev`'s, say) fails the task if it claims it.
#include <ferry/ferry.h>

#include <charconv>
#include <chrono>
#include <iostream>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: resize-submit REDIS_URL WIDTH [QUEUE]\n";
    return 2;
  }
  // The whole argument must be a number: "64o" is a typo, not 64.
  const std::string_view text = argv[2];
  int width = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), width);
  if (ec != std::errc() || end != text.data() + text.size()) {
    std::cerr << "resize-submit: WIDTH must be an integer, got \"" << text << "\"\n";
    return 2;
  }
  ferry::ClientOptions options;
  options.redis_url = argv[1];
  auto client = ferry::Client::Connect(options);
  if (!client) {
    std::cerr << client.error().ToString() << "\n";
    return 3;
  }
  ferry::SubmitOptions submit;
  if (argc == 4) submit.queue = argv[3];
  auto id = (*client)->Submit("resize", {{"width", width}}, submit);
  if (!id) {
    std::cerr << id.error().ToString() << "\n";
    return 1;
  }
  auto task = (*client)->Wait(*id, std::chrono::seconds(60));
  if (!task) {
    std::cerr << task.error().ToString() << "\n";
    return 1;
  }
  if (task->status != "succeeded") {
    std::cerr << *id << " " << task->status << ": " << task->error << "\n";
    return 1;
  }
  std::cout << task->result.dump() << "\n";
  return 0;
}
