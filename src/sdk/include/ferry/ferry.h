// Ferry's C++ SDK: the whole public surface (docs/sdk.md).
//   ferry/json.h         Json (nlohmann::json) and ParseJson/DumpJson
//   ferry/result.h       Result<T>, Status, Error, ErrorCode
//   ferry/handler.h      HandlerRegistry, TaskContext (stop token, events, epoch), HandlerError
//   ferry/worker_main.h  RunWorkerMain: a worker binary with your kinds      (Ferry::worker)
//   ferry/client.h       Client: submit, wait, cancel tasks; start runs      (Ferry::client)
#pragma once

#include "ferry/client.h"
#include "ferry/handler.h"
#include "ferry/json.h"
#include "ferry/result.h"
#include "ferry/worker_main.h"
