dmsd_add_test(NAME test_systemd SOURCES systemd_notify_test.cpp LIBS dmsd_platform dmsd_test_support
              LABELS unit)
