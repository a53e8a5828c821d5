// A part the layer list does not know: the check must refuse it.
#pragma once

#include "core/result.h"
