// Internal name of the public header: errors as values (include/ferry/result.h).
#pragma once

#include "ferry/result.h"
