# Configuration loader: unit tests (no dmsd binary needed) and the check-config
# command run as a real process on the shipped configs/.
dmsd_add_test(NAME test_config
    SOURCES config_test.cpp config_syntax_test.cpp
    LIBS dmsd_platform dmsd_test_support
    LABELS unit)
target_compile_definitions(test_config PRIVATE DMSD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

dmsd_add_test(NAME test_config_cli
    SOURCES config_cli_test.cpp
    LIBS dmsd_platform dmsd_test_support
    LABELS unit)
target_compile_definitions(test_config_cli PRIVATE
    DMSD_SOURCE_DIR="${PROJECT_SOURCE_DIR}" DMSD_BINARY="$<TARGET_FILE:dmsd>")
add_dependencies(test_config_cli dmsd)
