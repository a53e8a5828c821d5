// The OpenAPI 3.1 description of the HTTP API: docs/openapi.json, embedded in the binary at build
// time and served at GET /api/v1/openapi.json. tests/contract/ validates it, checks that it lists
// exactly the routes the server registers, and checks answers against its schemas.
#pragma once

#include <string_view>

namespace ferry::api {

// The document's JSON text, as in the repository.
std::string_view OpenApiDocument();

}  // namespace ferry::api
