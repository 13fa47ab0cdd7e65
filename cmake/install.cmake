# What `cmake --install` puts where (GNUInstallDirs; with --prefix /usr the Debian layout), and
# the Debian package made from it by CPack:
#
#   cmake --install build --prefix /usr            # or DESTDIR=/tmp/stage cmake --install ...
#   cpack --config build/CPackConfig.cmake -G DEB -B build/package
#
# Included at the end of the top-level CMakeLists.txt, after every target exists.
include(GNUInstallDirs)

# Relative to the prefix, not CMAKE_INSTALL_LIBDIR: systemd looks in <prefix>/lib/systemd,
# never in a multiarch folder.
set(DEVLIST_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
  "Where the systemd units are installed (relative to the prefix)")
set(DEVLIST_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING
  "Where the sysusers.d fragment is installed (relative to the prefix)")
set(DEVLIST_TMPFILES_DIR "lib/tmpfiles.d" CACHE STRING
  "Where the tmpfiles.d fragment is installed (relative to the prefix)")

# The daemon in sbin (started by systemd, not by people), the client in bin.
install(TARGETS devlistd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS devlistctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The units name /usr/sbin/devlistd, the packaged path; another prefix gets its own path, set
# when installing because `cmake --install --prefix` and CPack choose the prefix only then.
set(devlist_units devlistd.service devlistd@.service devlistd.socket devlistd@.socket)
foreach(unit IN LISTS devlist_units)
  install(CODE "
    set(DEVLIST_UNIT_SOURCE \"${PROJECT_SOURCE_DIR}/systemd/${unit}\")
    set(DEVLIST_UNIT_OUTPUT \"${PROJECT_BINARY_DIR}/systemd/${unit}\")
    set(DEVLIST_SBINDIR \"${CMAKE_INSTALL_SBINDIR}\")
    include(\"${PROJECT_SOURCE_DIR}/cmake/install_unit.cmake\")")
  install(FILES ${PROJECT_BINARY_DIR}/systemd/${unit} DESTINATION ${DEVLIST_SYSTEMD_UNIT_DIR})
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/systemd/sysusers.d/devlistd.conf
  DESTINATION ${DEVLIST_SYSUSERS_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/tmpfiles.d/devlistd.conf
  DESTINATION ${DEVLIST_TMPFILES_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/devlistd.toml.example
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The embeddable library (libdevlist, its headers under ${CMAKE_INSTALL_INCLUDEDIR}/devlist, the
# pkg-config file and the CMake package files) installs here too once it exists; the package
# below takes whatever is installed.

# ---- the Debian package ----
set(CPACK_PACKAGE_NAME devlistd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Matrix device lists and end-to-end-encryption keys, kept right by a daemon")
set(CPACK_PACKAGE_DESCRIPTION
  "devlistd long-polls /sync for one Matrix account, tracks and verifies the device lists\n\
of every user it shares an encrypted room with, keeps its own device's one-time and\n\
fallback keys published, and answers local programs on a Unix socket. devlistctl is\n\
its command-line client.")
set(DEVLIST_PACKAGE_CONTACT "devlistd maintainers <devlistd@localhost>" CACHE STRING
  "Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT "${DEVLIST_PACKAGE_CONTACT}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the shared libraries the binaries use (libsodium, libsqlite3, libssl,
# libsystemd, libstdc++), as dh_shlibdeps would.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/cmake/debian/postinst
  ${PROJECT_SOURCE_DIR}/cmake/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
