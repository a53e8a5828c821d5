// Serves the web console: GET / answers the page (index.html), GET /assets/{file} its scripts
// and styles. No authentication here: the files hold no data, and every datum the page shows
// comes from /api/v1 with the bearer token the operator logs in with (none under `ferry dev`).
//
// Every answer carries a strict Content-Security-Policy (scripts, styles and fetches from this
// origin only; no inline script, no eval, no frames), nosniff and no-referrer. Files are
// revalidated on each load (ETag, 304) so a new binary's console is never mixed with an old one.
//
// Thread-safety: the routes only read constant data.
#pragma once

#include "http/message.h"
#include "http/router.h"

namespace ferry::console {

// The Content-Security-Policy sent with every console file.
inline constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The answer for one console request: `name` is the file ("index.html" for /); a missing file is
// 404 in the API's error format.
http::Response Serve(const http::Request& request, std::string_view name);

// Adds GET / and GET /assets/{file} to `router`.
void AddRoutes(http::Router& router);

}  // namespace ferry::console
