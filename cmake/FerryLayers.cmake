# The parts of src/ from the ground up: a part may include only parts listed before it, so every
# dependency points down and none runs in a circle. A new part goes in this list above all it
# uses; a change that needs an include the other way is a design question, not a list edit.
#
#   cmake -DFERRY_SOURCE_DIR=<repository> -P cmake/FerryLayers.cmake
#
# Exits with an error naming each file that includes a part above its own (the `layers` test
# runs it; docs/architecture.md describes the parts). Headers of include/ferry/ (the public SDK,
# self-contained) may be included from anywhere.
set(FERRY_LAYERS
    core
    http
    devstack
    store
    process
    cron
    broker
    console
    worker
    views
    engine
    handlers
    runs
    scheduler
    remediation
    ops
    service
    api
    cli
    sdk)

if(NOT FERRY_SOURCE_DIR)
  message(FATAL_ERROR "usage: cmake -DFERRY_SOURCE_DIR=<repository> -P cmake/FerryLayers.cmake")
endif()
set(src "${FERRY_SOURCE_DIR}/src")
file(GLOB_RECURSE files RELATIVE "${src}" "${src}/*.h" "${src}/*.cc")
set(problems "")
set(checked 0)
foreach(file IN LISTS files)
  string(REGEX MATCH "^[^/]+" part "${file}")
  list(FIND FERRY_LAYERS "${part}" mine)
  if(mine EQUAL -1)
    string(APPEND problems "\n  src/${part}/ is in no layer: add it to FERRY_LAYERS")
    continue()
  endif()
  file(STRINGS "${src}/${file}" includes REGEX "^#include \"[a-z_]+/")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^#include \"([a-z_]+)/.*" "\\1" dep "${line}")
    if(dep STREQUAL part OR dep STREQUAL "ferry")
      continue()
    endif()
    math(EXPR checked "${checked} + 1")
    list(FIND FERRY_LAYERS "${dep}" theirs)
    if(theirs EQUAL -1)
      string(APPEND problems "\n  src/${file}: ${line}: ${dep}/ is no part of src/")
    elseif(theirs GREATER mine)
      string(APPEND problems
             "\n  src/${file}: ${line}: ${dep} is above ${part} (cmake/FerryLayers.cmake)")
    endif()
  endforeach()
endforeach()
if(problems)
  message(FATAL_ERROR "includes that point up:${problems}")
endif()
list(LENGTH files n)
message(STATUS "layers: ${n} files, ${checked} includes across parts, all pointing down")
