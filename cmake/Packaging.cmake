# Installation layout (Debian's) and the .deb built by CPack.
pkg_get_variable(DMSD_PKG_SYSTEMD_UNIT_DIR systemd systemdsystemunitdir)
if(NOT DMSD_PKG_SYSTEMD_UNIT_DIR)
    set(DMSD_PKG_SYSTEMD_UNIT_DIR /lib/systemd/system)
endif()
set(DMSD_SYSTEMD_UNIT_DIR "${DMSD_PKG_SYSTEMD_UNIT_DIR}" CACHE PATH "Where dmsd.service is installed")
set(DMSD_SYSUSERS_DIR "lib/sysusers.d" CACHE PATH "Where sysusers.d files go (relative: under the prefix)")
set(DMSD_CATALOG_DIR "lib/systemd/catalog" CACHE PATH "journal catalog dir (relative: under the prefix)")
# /etc even when the prefix is /usr (Debian policy for conffiles).
set(DMSD_CONFIG_DIR "/etc/dmsd" CACHE PATH "Where the factory dmsd.yaml is installed")

install(FILES ${PROJECT_SOURCE_DIR}/systemd/dmsd.service DESTINATION ${DMSD_SYSTEMD_UNIT_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/dmsd.sysusers DESTINATION ${DMSD_SYSUSERS_DIR}
        RENAME dmsd.conf)
if(EXISTS ${PROJECT_SOURCE_DIR}/systemd/dmsd.catalog)
    install(FILES ${PROJECT_SOURCE_DIR}/systemd/dmsd.catalog DESTINATION ${DMSD_CATALOG_DIR})
endif()
install(FILES ${PROJECT_SOURCE_DIR}/configs/dmsd.yaml DESTINATION ${DMSD_CONFIG_DIR})
install(DIRECTORY DESTINATION ${DMSD_CONFIG_DIR}/conf.d)
# docs/man/ is the source of the man pages (cmake/Man.cmake), not a document.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        PATTERN man EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# Example unit drop-ins (docs/operations.md, "Unit drop-ins").
install(DIRECTORY ${PROJECT_SOURCE_DIR}/systemd/examples/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/systemd)
# Debian's machine-readable copyright file: the licence of everything shipped.
install(FILES ${PROJECT_SOURCE_DIR}/systemd/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "dmsd")
set(CPACK_PACKAGE_VENDOR "dmsd developers")
set(CPACK_PACKAGE_CONTACT "dmsd developers <dmsd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${PROJECT_DESCRIPTION}
 dmsd watches the driver through a dashboard camera and tells the vehicle when
 the driver is drowsy, distracted, on the phone, hands off the wheel or not
 visible, from the answers of a vision model served by Ollama. Alerts go out
 as D-Bus signals, SocketCAN frames and journal entries. Runs as a hardened
 systemd service with over-the-air configuration updates; dmsd analyze
 replays recorded trips.")
set(CPACK_DEBIAN_PACKAGE_SECTION "misc")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The shipped binary is stripped; its debug information goes to a separate
# dmsd-dbgsym package (.ddeb), found by build id (so build RelWithDebInfo).
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
# What decodes the sources docs/operations.md ("The package") promises:
# -base: decodebin, videoconvert/scale/rate, appsink, videotestsrc; -good:
# v4l2src, jpegdec (MJPEG cameras), qtdemux/matroskademux/avidemux (files).
# libdlib-data: the 68-point landmark model the per-frame vision (on by
# default, vision.model) loads (the library itself comes with shlibdeps).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, dbus, systemd, libdlib-data")
# H.264/H.265 in recorded files (analyze, file:); a camera-only vehicle may
# leave it out.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gstreamer1.0-libav")
# The technician's recipes of docs/operations.md (candump, jq).
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "can-utils, jq")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/systemd/debian/conffiles;${PROJECT_SOURCE_DIR}/systemd/debian/postinst;${PROJECT_SOURCE_DIR}/systemd/debian/prerm;${PROJECT_SOURCE_DIR}/systemd/debian/postrm")
include(CPack)
