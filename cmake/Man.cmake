# Man pages dmsd(8) and dmsd.yaml(5), made at build time by pandoc from the
# Markdown in docs/man/ (dmsd.yaml(5) includes docs/configuration.md itself,
# through docs/man/man.lua), compressed as Debian policy wants them, and
# installed under share/man. The uncompressed pages stay in <build>/man/ for
# the tests (test/cli/CMakeLists.txt, test/config/CMakeLists.txt).
option(DMSD_MAN "Build and install the man pages (needs pandoc)" ON)
if(NOT DMSD_MAN)
    return()
endif()

find_program(DMSD_PANDOC pandoc)
find_program(DMSD_GZIP gzip REQUIRED)
if(NOT DMSD_PANDOC)
    message(FATAL_ERROR "pandoc not found: it makes the man pages (scripts/install-deps installs "
                        "it), or configure with -DDMSD_MAN=OFF")
endif()

set(DMSD_MAN_DIR ${PROJECT_BINARY_DIR}/man)
file(MAKE_DIRECTORY ${DMSD_MAN_DIR})
set(_dmsd_man_src ${PROJECT_SOURCE_DIR}/docs/man)
set(_dmsd_man_outputs)

# dmsd_man_page(<name> <section> [DEPENDS files...]): docs/man/<name>.<section>.md
function(dmsd_man_page name section)
    cmake_parse_arguments(P "" "" "DEPENDS" ${ARGN})
    set(page ${DMSD_MAN_DIR}/${name}.${section})
    add_custom_command(
        OUTPUT ${page} ${page}.gz
        COMMAND ${DMSD_PANDOC} --standalone --to man --lua-filter ${_dmsd_man_src}/man.lua
                --metadata "footer=dmsd ${PROJECT_VERSION}"
                --output ${page} ${_dmsd_man_src}/${name}.${section}.md
        COMMAND ${DMSD_GZIP} -9 -n -f -k ${page}
        DEPENDS ${_dmsd_man_src}/${name}.${section}.md ${_dmsd_man_src}/man.lua ${P_DEPENDS}
        COMMENT "Man page ${name}(${section})"
        VERBATIM)
    install(FILES ${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
    set(_dmsd_man_outputs ${_dmsd_man_outputs} ${page} ${page}.gz PARENT_SCOPE)
endfunction()

dmsd_man_page(dmsd 8)
dmsd_man_page(dmsd.yaml 5 DEPENDS ${PROJECT_SOURCE_DIR}/docs/configuration.md)
add_custom_target(dmsd_man ALL DEPENDS ${_dmsd_man_outputs})
