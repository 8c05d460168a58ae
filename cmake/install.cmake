# `cmake --install` (CMAKE_INSTALL_PREFIX, DESTDIR; GNUInstallDirs): the three binaries, the
# header, libedgefleet.so (versioned soname) and the self-contained libedgefleet.a, edgefleet.pc
# and the CMake package (edgefleetConfig.cmake + version file, imported target
# edgefleet::edgefleet; edgefleet::edgefleet_static for the archive).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Components are the Debian packages (cmake/package.cmake): agent, coordinator, tools, lib, dev.
install(TARGETS edgefleet-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT agent)
if(EF_BUILD_COORDINATOR)
  install(TARGETS edgefleet-coordinator
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT coordinator)
endif()
install(TARGETS edgefleetctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
install(TARGETS edgefleet
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_SKIP)
install(TARGETS edgefleet
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev NAMELINK_ONLY)
install(FILES ${EF_STATIC_BUNDLE} DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(FILES ${CMAKE_SOURCE_DIR}/include/edgefleet.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# pkg-config: the shared library by default; `pkg-config --static` adds what the archive needs.
# Relocatable: the prefix is found from the .pc file's own place, so --prefix at install time
# and DESTDIR trees work without a reconfigure.
file(RELATIVE_PATH EF_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" EF_PC_TO_PREFIX "${EF_PC_TO_PREFIX}")
set(EF_PC_REQUIRES_PRIVATE "libzmq libprotobuf-c libsodium libuv")
configure_file(${CMAKE_SOURCE_DIR}/cmake/edgefleet.pc.in ${CMAKE_BINARY_DIR}/edgefleet.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/edgefleet.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

set(EF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/edgefleet)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/edgefleetConfig.cmake.in
  ${CMAKE_BINARY_DIR}/edgefleetConfig.cmake INSTALL_DESTINATION ${EF_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/edgefleetConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/edgefleetConfig.cmake
  ${CMAKE_BINARY_DIR}/edgefleetConfigVersion.cmake DESTINATION ${EF_CMAKE_DIR} COMPONENT dev)
