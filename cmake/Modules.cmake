# One folder, one module, one static library: dmsd_<folder>.
#
# A module sees the headers of the modules it links and no others: headers
# are included from the repository root ("llm/scheduler.h"), but no target
# gets the root itself as an include directory. Each module instead exposes
# a directory holding one symbolic link, <build>/modules/<name>/<name> ->
# <source>/<name>, as a PUBLIC include directory. Linking a module
# therefore brings its headers (and those of what it links, transitively);
# including a header of a module the target does not link fails to compile.
#
#   dmsd_module(NAME <folder> SOURCES <files...> [DEPS <targets...>] [LIBS <targets...>])
#
# DEPS: other dmsd modules (lower layers); LIBS: third-party targets.
# docs/architecture.md draws the layers.

function(dmsd_expose name)
    set(root ${CMAKE_BINARY_DIR}/modules/${name})
    file(MAKE_DIRECTORY ${root})
    if(NOT EXISTS ${root}/${name})
        file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${name} ${root}/${name} SYMBOLIC)
    endif()
    set(DMSD_MODULE_INCLUDE_${name} ${root} PARENT_SCOPE)
endfunction()

function(dmsd_module)
    cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS;LIBS" ${ARGN})
    dmsd_expose(${M_NAME})
    add_library(dmsd_${M_NAME} STATIC ${M_SOURCES})
    target_include_directories(dmsd_${M_NAME} PUBLIC ${DMSD_MODULE_INCLUDE_${M_NAME}})
    target_link_libraries(dmsd_${M_NAME} PUBLIC ${M_DEPS} ${M_LIBS})
endfunction()

# For targets that compile a module's sources into themselves instead of
# linking it (the fuzzers): the include directories of these modules.
function(dmsd_module_includes target)
    foreach(name ${ARGN})
        target_include_directories(${target} PRIVATE ${CMAKE_BINARY_DIR}/modules/${name})
    endforeach()
endfunction()
