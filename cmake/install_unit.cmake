# Runs at install time (install(CODE) in install.cmake): writes a systemd unit whose ExecStart
# names the devlistd of this installation's prefix, which is only known now (`cmake --install
# --prefix`, CPack's /usr). Inputs: DEVLIST_UNIT_SOURCE, DEVLIST_UNIT_OUTPUT, DEVLIST_SBINDIR.
set(sbindir "${DEVLIST_SBINDIR}")
if(NOT IS_ABSOLUTE "${sbindir}")
  set(sbindir "${CMAKE_INSTALL_PREFIX}/${sbindir}")
endif()
file(READ "${DEVLIST_UNIT_SOURCE}" text)
string(REPLACE "/usr/sbin/devlistd" "${sbindir}/devlistd" text "${text}")
file(WRITE "${DEVLIST_UNIT_OUTPUT}" "${text}")
