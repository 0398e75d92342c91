# D-Bus service against a private dbus-daemon with busctl/dbus-send as clients
# (real processes, real bus); also loads the shipped bus policy into a system-like bus.
dmsd_add_test(NAME test_dbus SOURCES dbus_service_test.cpp LIBS dmsd_platform dmsd_test_support
              LABELS integration TIMEOUT 120)
target_compile_definitions(test_dbus PRIVATE DMSD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
