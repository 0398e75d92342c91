dmsd_add_test(NAME test_config_watch SOURCES config_watch_test.cpp LIBS dmsd_platform dmsd_test_support
              LABELS unit)
