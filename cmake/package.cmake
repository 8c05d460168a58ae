# Debian packages with CPack, one per install component: `cpack -G DEB` in the build directory
# (or `cpack -G DEB --config BUILD/CPackConfig.cmake -B OUT`) makes
#   edgefleet-agent        the agent, its systemd unit, an example agent.ini
#   edgefleet-coordinator  the coordinator and its systemd unit
#   edgefleet-tools        edgefleetctl (keygen, provision, generate, status, drain)
#   libedgefleet0          libedgefleet.so.0
#   libedgefleet-dev       edgefleet.h, libedgefleet.so, libedgefleet.a, edgefleet.pc, CMake package
# Library dependencies come from dpkg-shlibdeps (libzmq5, libsodium23, libuv1, libprotobuf-c1,
# libinih1...). deploy/debian/ holds the maintainer scripts of the two daemons: the edgefleet
# user and /etc/edgefleet on install; remove keeps keys and config, purge takes them.
include(GNUInstallDirs)

# The units name /usr/bin (the packages' prefix); another install prefix gets its own bindir.
# Done at install time, as CMAKE_INSTALL_PREFIX may be given then (cmake --install --prefix).
set(ef_daemons agent)
if(EF_BUILD_COORDINATOR)
  list(APPEND ef_daemons coordinator)
endif()
foreach(daemon ${ef_daemons})
  set(unit edgefleet-${daemon}.service)
  install(CODE "
    file(READ \"${CMAKE_SOURCE_DIR}/deploy/${unit}\" ef_unit)
    string(REPLACE \"/usr/bin/\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/\" ef_unit \"\${ef_unit}\")
    file(WRITE \"${CMAKE_BINARY_DIR}/units/${unit}\" \"\${ef_unit}\")
    file(INSTALL \"${CMAKE_BINARY_DIR}/units/${unit}\"
      DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\"
      PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)" COMPONENT ${daemon})
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/deploy/agent.ini
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/edgefleet-agent/examples COMPONENT agent)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgefleet)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "edgefleet maintainers <edgefleet@localhost>")
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPackDeb would put it above each package's own summary.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# DESTDIR staging, so CMAKE_INSTALL_PREFIX is /usr while installing (the units' rewrite reads it).
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${ef_daemons} tools lib dev)
# A cross build's packages are for its target (the host's dpkg would say amd64).
if(CMAKE_CROSSCOMPILING AND CMAKE_SYSTEM_PROCESSOR STREQUAL "aarch64")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/edgefleet/edgefleet")

set(ef_deb_version "${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")
set(ef_scripts ${CMAKE_SOURCE_DIR}/deploy/debian/postinst ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
  ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME edgefleet-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA ${ef_scripts})
set(CPACK_DEBIAN_AGENT_DESCRIPTION
  "edgefleet agent: serves GGUF models with llama.cpp to an edgefleet coordinator\n\
One per edge board; dials out to the coordinator over ZeroMQ CURVE.")

set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME edgefleet-coordinator)
# edgefleetctl makes the coordinator's key in postinst and provisions boards.
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_DEPENDS "adduser, edgefleet-tools (= ${ef_deb_version})")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_CONTROL_EXTRA ${ef_scripts})
set(CPACK_DEBIAN_COORDINATOR_DESCRIPTION
  "edgefleet coordinator: routes inference requests across the edge fleet\n\
Keeps the list of boards and sends each request to a board with a free slot.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME edgefleet-tools)
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
  "edgefleetctl: keys, board provisioning and requests for an edgefleet fleet")

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libedgefleet0)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_LIB_DESCRIPTION "edgefleet client library (libedgefleet.so.0)")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libedgefleet-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# edgefleet.pc's Requires.private, needed by pkg-config even for the shared library.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libedgefleet0 (= ${ef_deb_version}), libzmq3-dev, \
libprotobuf-c-dev, libsodium-dev, libuv1-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "edgefleet client library: header, static library, pkg-config and CMake files")

include(CPack)
