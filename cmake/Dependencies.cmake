# All dependencies come from Debian bookworm packages (scripts/install-deps),
# found through their CMake config packages or pkg-config, never by path.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS json url program_options)
find_package(fmt REQUIRED CONFIG)
# https to the model server (llm/http_transport.cpp: Beast's ssl_stream)
find_package(OpenSSL 3 REQUIRED)
find_package(yaml-cpp REQUIRED CONFIG)
pkg_check_modules(GST REQUIRED IMPORTED_TARGET gstreamer-1.0>=1.22 gstreamer-app-1.0 gstreamer-video-1.0)
# GstDiscoverer (batch/duration_probe.cpp): how long a video is before it is decoded.
pkg_check_modules(GST_PBUTILS REQUIRED IMPORTED_TARGET gstreamer-pbutils-1.0)
pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
# GLib comes with GStreamer; base/ uses its SHA-256 (GChecksum).
pkg_check_modules(GLIB REQUIRED IMPORTED_TARGET glib-2.0)
# vision/: dlib (HOG face detector, correlation tracker, 68-point shape
# predictor) through the CMake config Debian ships; OpenCV for the resizes
# (vision/, and pipeline/ scaling frames to encode.max_side) and
# solvePnP only (core, imgproc, calib3d), so nothing else of OpenCV is linked.
find_package(dlib REQUIRED CONFIG)
find_package(OpenCV REQUIRED CONFIG COMPONENTS core imgproc calib3d)

# Boost.Asio/Beast: one io_context per process, no deprecated interfaces.
# (Beast 1.81 always uses boost::core::string_view, which converts to and from
# std::string_view; BOOST_BEAST_USE_STD_STRING_VIEW only prints a deprecation
# note in every file that includes Beast.)
add_compile_definitions(BOOST_ASIO_NO_DEPRECATED)

if(yaml-cpp_FOUND AND NOT TARGET yaml-cpp::yaml-cpp)
    add_library(yaml-cpp::yaml-cpp ALIAS yaml-cpp)
endif()
