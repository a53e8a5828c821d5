// A Ferry worker with a task kind of its own. It takes every flag, FERRY_* variable and config
// key of `ferry worker start`:
//   ./resize-worker --redis-url redis://127.0.0.1:6379 --concurrency 4
#include <ferry/ferry.h>

#include <chrono>
#include <thread>

namespace {

ferry::HandlerResult Resize(ferry::TaskContext& ctx) {
  const ferry::Json& p = ctx.payload;
  if (!p.is_object() || !p.contains("width") || !p["width"].is_number_integer() ||
      p["width"].get<int>() <= 0) {
    // Not retryable: the same payload would fail again.
    return tl::unexpected(ferry::HandlerError{"payload.width must be a positive integer", false});
  }
  const int width = p["width"].get<int>();
  for (int percent = 25; percent <= 100; percent += 25) {
    // Cancel, timeout, lease loss and the drain deadline all request stop: leave promptly.
    if (ctx.stop.stop_requested()) return tl::unexpected(ferry::HandlerError{"stopped", true});
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ctx.events->Emit("progress", {{"percent", percent}});
  }
  // ctx.epoch is the fencing token: pass it to anything that must reject a stale worker.
  return ferry::Json{{"width", width}, {"height", width * 3 / 4}, {"epoch", ctx.epoch}};
}

}  // namespace

int main(int argc, char** argv) {
  ferry::HandlerRegistry registry;
  registry.Register("resize", Resize);
  return ferry::RunWorkerMain(argc, argv, registry);
}
