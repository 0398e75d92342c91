dmsd_add_test(NAME test_allocator SOURCES allocator_test.cpp LIBS dmsd_platform LABELS unit)
