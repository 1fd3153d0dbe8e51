# Installation layout and the Debian package (cpack -G DEB).
#
#   cmake --install build            binaries, units, sysusers/tmpfiles,
#                                    examples, man pages, docs
#   (cd build && cpack -G DEB)       aam_<version>_<arch>.deb
#
# The daemons run as system services whose units name their binaries by
# absolute path, so the default prefix is /usr (not /usr/local); pass
# -DCMAKE_INSTALL_PREFIX=... to change it (the units follow).  Example
# configurations are installed under share/aam/examples and never over an
# existing /etc/aam: the package's postinst copies them only when absent.
# docs/DEPLOYMENT.md describes the result.

if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix" FORCE)
endif()
include(GNUInstallDirs)

# --- binaries: daemons in sbin, client tools in bin ---
# aam-gateway is defined by a deferred call in gateway/CMakeLists.txt (once
# its router exists), so these rules are deferred too and run after it.
function(aam_install_binaries)
  foreach(_t aam-vault aam-attest aam-gateway)
    if(TARGET ${_t})
      install(TARGETS ${_t} RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT aam)
    endif()
  endforeach()
  foreach(_t aam-agent aamctl aam-audit-verify)
    if(TARGET ${_t})
      install(TARGETS ${_t} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT aam)
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL aam_install_binaries)

# --- systemd units, with the binaries' real paths ---
# The prefix is only known at install time (cpack installs with its own,
# /usr), so the units are rewritten then: ExecStart names
# <prefix>/sbin/aam-... and <prefix>/bin/aam-agent.
file(GLOB _aam_units CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/deploy/systemd/*.service)
foreach(_u ${_aam_units})
  install(CODE "
    file(READ \"${_u}\" _text)
    string(REPLACE \"/usr/sbin/\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}/\" _text \"\${_text}\")
    string(REPLACE \"/usr/bin/aam\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/aam\" _text \"\${_text}\")
    get_filename_component(_name \"${_u}\" NAME)
    set(_dir \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
    message(STATUS \"Installing: \${_dir}/\${_name}\")
    file(MAKE_DIRECTORY \"\${_dir}\")
    file(WRITE \"\${_dir}/\${_name}\" \"\${_text}\")
  " COMPONENT aam)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/deploy/sysusers.d/aam.conf
  DESTINATION lib/sysusers.d COMPONENT aam)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/tmpfiles.d/aam.conf
  DESTINATION lib/tmpfiles.d COMPONENT aam)

# --- examples (never installed over /etc/aam) ---
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/etc/aam/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/aam/examples COMPONENT aam
  FILES_MATCHING PATTERN "*.yaml")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/policies/examples/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/aam/examples/policies COMPONENT aam
  FILES_MATCHING PATTERN "*.yaml")

# --- man pages and documentation ---
file(GLOB _aam_man1 CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.1)
file(GLOB _aam_man8 CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.8)
if(_aam_man1)
  install(FILES ${_aam_man1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT aam)
endif()
if(_aam_man8)
  install(FILES ${_aam_man8} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT aam)
endif()
file(GLOB _aam_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${_aam_docs}
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT aam)

# --- Debian package ---
set(CPACK_PACKAGE_NAME aam)
set(CPACK_PACKAGE_VENDOR "Agent Access Manager")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Agent Access Manager: attested identity, policy, secretless execution and signed audit for AI agents")
set(CPACK_PACKAGE_CONTACT "AAM maintainers <aam@localhost>")
# A Debian package always installs under /usr, whatever the build's prefix.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The shared libraries the binaries link (dpkg -S on each one, Debian 12);
# procps for /bin/kill, which the units' ExecReload= runs (a minimal Debian
# has no kill binary: deploy/systemd-check.sh found `systemctl reload` failing).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libc6, libssl3, libp11-kit0, libmicrohttpd12, libjansson4, libyaml-0-2, libsqlite3-0, libcurl4, libtss2-esys-3.0.2-0, libtss2-mu0, libtss2-rc0, libtss2-tctildr0, systemd | systemd-standalone-sysusers, adduser, procps")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "softhsm2, p11-kit, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "swtpm, tpm2-tools, opensc")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
