# Install rules and the Debian package: `cpack -G DEB` in a build directory makes
# tumbled_<version>_<arch>.deb (tests/deploy/package_test.sh checks what it holds).
#
# The layout is the package's: the binary under the install prefix (/usr in the package), and the
# files systemd and the administrator look for at fixed absolute paths, /lib/systemd/system and
# /etc/tumbled. A plain `cmake --install` writes those absolute paths too, so install through the
# package.
include(GNUInstallDirs)
install(TARGETS tumbled RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES deploy/tumbled.service DESTINATION /lib/systemd/system)
install(FILES deploy/tumbled.yaml DESTINATION /etc/tumbled)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tumbled)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "tumbled maintainers <tumbled@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "tumbling-window sums of integers from TCP, written to InfluxDB")
# The long description; CPack puts the summary above it and indents it for the control file.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "tumbled reads newline-delimited integers from TCP sockets, \
sums them over tumbling windows and writes one point per window to InfluxDB, keeping open windows \
and unsent points in a local RocksDB state store so that nothing accepted is lost across InfluxDB \
outages and restarts. It runs as tumbled.service under the system user tumbled.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared-library dependencies come from dpkg-shlibdeps (dpkg-dev); adduser is for the postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "influxdb")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/debian/conffiles
    ${CMAKE_CURRENT_LIST_DIR}/debian/postinst
    ${CMAKE_CURRENT_LIST_DIR}/debian/prerm
    ${CMAKE_CURRENT_LIST_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
