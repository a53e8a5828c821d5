# The Debian package: `cpack -G DEB` in the build directory (after building) writes
# ferry_<version>_<arch>.deb there, with
#   /usr/bin/ferry
#   /usr/lib/systemd/system/ferry-{server,scheduler,worker@}.service  (deploy/systemd, run as the
#                                         `ferry` user instead of a dynamic one, /usr/bin/ferry)
#   /etc/ferry/ferry.env                  (deploy/ferry.env, a conffile)
#   /usr/share/bash-completion/completions/ferry, /usr/share/zsh/vendor-completions/_ferry
#                                         (`ferry completion bash|zsh`, generated from the binary)
#   /usr/share/doc/ferry/                 (README, docs/*.md and openapi.json, help-all.txt:
#                                         `ferry --help-all` and every command's --help)
# and maintainer scripts (deploy/debian) that create the `ferry` system user. README "Debian
# package" says how to build, install and test it.
include(GNUInstallDirs)

install(TARGETS ferry RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Units: the deploy/ files run `ferry` from /usr/local/bin under DynamicUser (a manual install);
# the package's run /usr/bin/ferry as the `ferry` user its postinst creates.
set(_ferry_pkg ${CMAKE_BINARY_DIR}/package)
foreach(unit ferry-server.service ferry-scheduler.service ferry-worker@.service)
  set(src ${PROJECT_SOURCE_DIR}/deploy/systemd/${unit})
  file(READ ${src} text)
  string(REPLACE "/usr/local/bin/ferry" "/usr/bin/ferry" text "${text}")
  string(REPLACE "/usr/local/share/doc/ferry" "/usr/share/doc/ferry" text "${text}")
  string(REPLACE "DynamicUser=yes" "User=ferry\nGroup=ferry" text "${text}")
  file(WRITE ${_ferry_pkg}/systemd/${unit}.tmp "${text}")
  file(COPY_FILE ${_ferry_pkg}/systemd/${unit}.tmp ${_ferry_pkg}/systemd/${unit} ONLY_IF_DIFFERENT)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  install(FILES ${_ferry_pkg}/systemd/${unit} DESTINATION lib/systemd/system)
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/deploy/ferry.env DESTINATION /etc/ferry
        PERMISSIONS OWNER_READ OWNER_WRITE)

# Completions and the full help, made by the binary itself so they list its real commands.
set(_ferry_gen ${_ferry_pkg}/generated)
add_custom_command(
  OUTPUT ${_ferry_gen}/ferry.bash ${_ferry_gen}/_ferry ${_ferry_gen}/help-all.txt
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_ferry_gen}
  COMMAND sh -c "\"$1\" completion bash > \"$2/ferry.bash\" && \"$1\" completion zsh > \"$2/_ferry\" && sh \"$3\" \"$1\" > \"$2/help-all.txt\"" sh $<TARGET_FILE:ferry> ${_ferry_gen} ${PROJECT_SOURCE_DIR}/deploy/debian/help-all.sh
  DEPENDS ferry ${PROJECT_SOURCE_DIR}/deploy/debian/help-all.sh
  WORKING_DIRECTORY ${_ferry_pkg}
  COMMENT "Generating ferry's shell completions and --help-all"
  VERBATIM)
add_custom_target(ferry_package_files ALL
  DEPENDS ${_ferry_gen}/ferry.bash ${_ferry_gen}/_ferry ${_ferry_gen}/help-all.txt)
install(FILES ${_ferry_gen}/ferry.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME ferry)
install(FILES ${_ferry_gen}/_ferry DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES ${_ferry_gen}/help-all.txt ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/ferry)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/ferry
        FILES_MATCHING PATTERN "*.md" PATTERN "openapi.json")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Ferry maintainers <ferry@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Background tasks on Redis Streams, durable workflows, cron and webhooks")
set(CPACK_PACKAGE_DESCRIPTION
    "One `ferry` binary: workers, the HTTP API server, the scheduler and the CLI, with systemd units running them as the ferry user.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# postinst runs useradd/groupadd (passwd) and getent (libc-bin). libpq, libcurl and OpenSSL are
# loaded on first use (dlopen), so dpkg-shlibdeps cannot see them: named here. libpq 14 is the
# first with pipeline mode (the PostgreSQL store sends BEGIN with a transaction's first statement).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, libpq5 (>= 14), libcurl4, libssl3")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
    ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm
    ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# The package carries the binary without its debug information (160 MB -> about 20 MB).
set(CPACK_STRIP_FILES ON)
include(CPack)
