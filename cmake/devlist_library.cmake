# libdevlist: the engine as a shared library for bots — the C++ façade
# (include/devlist/engine.hpp) and the C API (include/devlist/devlist.h) — and what installs it:
# the headers, the library, a pkg-config file (devlist.pc) and a CMake package
# (find_package(devlist) → devlist::devlist). Everything here is in the install component
# "devlist":
#
#   cmake --install build --component devlist --prefix /usr
#
# Included from the top-level CMakeLists.txt after every target exists.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
find_package(tomlplusplus REQUIRED)

# The static libraries inside it: position-independent, and hidden, so that only the
# declarations marked DEVLIST_API (include/devlist/export.h) are exported, besides Boost's own
# (see devlist.map). The library and the program each hold a copy of devlist::error_category(),
# so the category compares by ID (include/devlist/error.hpp).
set_target_properties(devlist_crypto devlist_storage devlist_http devlist_sync_core devlist_sync
  PROPERTIES POSITION_INDEPENDENT_CODE ON CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)

add_library(devlist SHARED
  sync/c_api.cpp
  sync/engine.cpp
  sync/engine_config.cpp)
add_library(devlist::devlist ALIAS devlist)
set_target_properties(devlist PROPERTIES
  VERSION ${PROJECT_VERSION}
  SOVERSION 0
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  EXPORT_NAME devlist)
target_include_directories(devlist PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
# The public headers use Asio (not Beast) and Boost.System.
target_link_libraries(devlist
  PUBLIC Boost::headers Threads::Threads
  PRIVATE devlist_sync tomlplusplus::tomlplusplus devlist_warnings)
target_compile_features(devlist PUBLIC cxx_std_20)
target_compile_definitions(devlist PRIVATE DEVLIST_VERSION="${PROJECT_VERSION}")
# Every symbol resolved when the library is linked, not when a bot loads it; exported only what
# the version script names.
target_link_options(devlist PRIVATE -Wl,--version-script=${PROJECT_SOURCE_DIR}/cmake/devlist.map)
# Not with clang's sanitizers: clang links their runtime into programs only, so a shared library
# leaves its calls into the runtime for the program to resolve.
if(NOT ((DEVLIST_SANITIZE OR DEVLIST_FUZZ) AND CMAKE_CXX_COMPILER_ID MATCHES "Clang"))
  target_link_options(devlist PRIVATE -Wl,--no-undefined)
endif()
set_property(TARGET devlist APPEND PROPERTY LINK_DEPENDS ${PROJECT_SOURCE_DIR}/cmake/devlist.map)

# The cross-module tests of the systemd work install the whole tree, which now holds libdevlist.
if(TARGET systemd_units_test)
  add_dependencies(systemd_units_test devlist)
endif()

# ---- install ----
set(devlist_public_headers
  include/devlist/devlist.h
  include/devlist/engine.hpp
  include/devlist/error.hpp
  include/devlist/export.h
  include/devlist/json.hpp
  include/devlist/types.hpp)
install(TARGETS devlist EXPORT devlist_targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devlist
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${devlist_public_headers}
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/devlist COMPONENT devlist)

set(devlist_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/devlist)
install(EXPORT devlist_targets NAMESPACE devlist:: FILE devlistTargets.cmake
  DESTINATION ${devlist_cmake_dir} COMPONENT devlist)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/devlistConfig.cmake.in
  ${PROJECT_BINARY_DIR}/devlistConfig.cmake INSTALL_DESTINATION ${devlist_cmake_dir})
# 0.x: a new minor version may break the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/devlistConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/devlistConfig.cmake
  ${PROJECT_BINARY_DIR}/devlistConfigVersion.cmake
  DESTINATION ${devlist_cmake_dir} COMPONENT devlist)

# The prefix is found from the .pc file's own place, so the tree works under any --prefix or
# DESTDIR, which `cmake --install` chooses only after configuration.
file(RELATIVE_PATH devlist_pc_to_prefix
  /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" devlist_pc_to_prefix "${devlist_pc_to_prefix}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/devlist.pc.in ${PROJECT_BINARY_DIR}/devlist.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/devlist.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT devlist)
