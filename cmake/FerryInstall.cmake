# `cmake --install`: the C++ SDK (docs/sdk.md). Public headers (include/ferry/ and
# src/sdk/include/ferry/, installed together as include/ferry/), every static
# library the SDK's targets need, and a CMake package exporting Ferry::worker and Ferry::client
# (the other Ferry:: targets are their internals). FerryConfig.cmake finds the same third-party
# packages as cmake/FerryDeps.cmake.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FERRY_INSTALLED_LIBS)
foreach(lib ferry_core ferry_process ferry_http ferry_broker ferry_broker_redis ferry_leader_redis
    ferry_worker ferry_handlers ferry_http_client ferry_engine ferry_store ferry_store_sqlite
    ferry_store_postgres ferry_views ferry_cron ferry_runs ferry_run_handler ferry_scheduler
    ferry_remediation_settings ferry_remediation ferry_ops_config ferry_ops ferry_api_requests
    ferry_service ferry_service_remote ferry_console ferry_api ferry_devstack ferry_cli
    ferry_sdk_client ferry_sdk_worker)
  if(TARGET ${lib})
    list(APPEND FERRY_INSTALLED_LIBS ${lib})
  endif()
endforeach()

install(TARGETS ${FERRY_INSTALLED_LIBS} ferry_warnings EXPORT FerryTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ferry ${PROJECT_SOURCE_DIR}/src/sdk/include/ferry
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT FerryTargets NAMESPACE Ferry:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Ferry)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/FerryConfig.cmake.in
  ${PROJECT_BINARY_DIR}/FerryConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Ferry)
# The SDK is young: only the same minor version promises the same headers.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/FerryConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/FerryConfig.cmake ${PROJECT_BINARY_DIR}/FerryConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Ferry)
