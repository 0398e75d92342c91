# The answer parser: whatever a model or a hostile server sends as content.
dmsd_add_fuzzer(NAME fuzz_answer_parser
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_answer_parser.cpp
            ${PROJECT_SOURCE_DIR}/llm/analysis.cpp
            ${DMSD_FUZZ_ANALYSIS_SOURCES}
            ${PROJECT_SOURCE_DIR}/base/json.cpp
            ${PROJECT_SOURCE_DIR}/base/utf8.cpp
    LIBS Boost::json fmt::fmt)
dmsd_module_includes(fuzz_answer_parser base pipeline llm)
