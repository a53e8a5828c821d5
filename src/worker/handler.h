// Internal name of the public header: the handler API (include/ferry/handler.h).
#pragma once

#include "ferry/handler.h"
