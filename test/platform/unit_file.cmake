# The shipped systemd unit: verify and security exposure.
add_test(NAME unit_file:dmsd.service
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit_file_test.sh
                 ${PROJECT_SOURCE_DIR}/systemd/dmsd.service $<TARGET_FILE:dmsd>)
set_tests_properties(unit_file:dmsd.service PROPERTIES SKIP_RETURN_CODE 77 LABELS unit TIMEOUT 60)
