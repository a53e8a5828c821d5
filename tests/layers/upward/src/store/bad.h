// A store file that reaches up into the service: the check must refuse it.
#pragma once

#include "core/result.h"
#include "service/service.h"
