# One warning list, applied only to Ferry's own targets (link ferry_warnings PRIVATE).
add_library(ferry_warnings INTERFACE)
target_compile_options(ferry_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wnull-dereference -Wdouble-promotion
  -Wformat=2 -Wimplicit-fallthrough -Wmisleading-indentation
  # GCC only: clang (the fuzz preset's compiler) does not know these.
  $<$<CXX_COMPILER_ID:GNU>:-Wduplicated-cond -Wlogical-op>
  $<$<BOOL:${FERRY_WERROR}>:-Werror>)

# Every Ferry library and executable: ferry_target(<name>) links the warning list.
function(ferry_target name)
  target_link_libraries(${name} PRIVATE ferry_warnings)
endfunction()
