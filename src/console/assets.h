// The web console's files, embedded in the binary at build time (embed_assets.cmake) from
// src/console/web/. A lookup table, not a file system: only the listed names exist, so no request
// path can reach anything else.
//
// Thread-safety: constant data; call from any thread.
#pragma once

#include <span>
#include <string_view>

namespace ferry::console {

struct Asset {
  std::string_view name;          // "app.js", as under web/
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view bytes;
  std::string_view etag;  // quoted, for the ETag header: "\"<hex>\""
};

// Every embedded file (generated).
std::span<const Asset> Assets();

// The file called `name` ("index.html", "app.js"), or nullptr.
const Asset* FindAsset(std::string_view name);

}  // namespace ferry::console
