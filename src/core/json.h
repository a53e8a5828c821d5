// Internal name of the public header: JSON (include/ferry/json.h).
#pragma once

#include "ferry/json.h"
