#include "api/openapi.h"

namespace ferry::api {
namespace embedded {
extern const std::string_view k_openapi;  // cmake/FerryEmbed.cmake, from docs/openapi.json
}  // namespace embedded

std::string_view OpenApiDocument() { return embedded::k_openapi; }

}  // namespace ferry::api
