# Notifiers of issue 5 owned here: CAN frames and notifier, journal entries, snapshots.
dmsd_add_test(NAME test_can
              SOURCES can_frame_test.cpp can_dbc_test.cpp can_notifier_test.cpp
              LIBS dmsd_platform dmsd_test_support LABELS unit)
# The DBC test reads docs/dmsd.dbc from the source tree.
target_compile_definitions(test_can PRIVATE DMSD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

dmsd_add_test(NAME test_journal SOURCES journal_test.cpp
              LIBS dmsd_platform dmsd_test_support LABELS unit)
target_compile_definitions(test_journal PRIVATE DMSD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

dmsd_add_test(NAME test_snapshots SOURCES snapshots_test.cpp
              LIBS dmsd_platform dmsd_test_support PkgConfig::TURBOJPEG LABELS unit)

# Live SocketCAN test on a vcan interface it creates (needs root and the vcan
# module); exits 77, reported by CTest as skipped with the reason, where the
# kernel has no vcan. Its own main (no Catch2): one scenario, one verdict.
add_executable(test_can_vcan can_vcan_test.cpp)
target_link_libraries(test_can_vcan PRIVATE dmsd_platform)
add_test(NAME test_can_vcan COMMAND test_can_vcan)
set_tests_properties(test_can_vcan PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60
                     LABELS "integration;hardware")
