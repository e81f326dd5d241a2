# EmberPlugin.cmake — ember_add_plugin(): builds an Ember backend plugin.
#
# Installed with the CMake package (find_package(Ember) includes it) and used
# by Ember's own build for plugins/example, so the in-tree build and a
# vendor's out-of-tree build go through the same function.
#
#   ember_add_plugin(<name>
#                    [SOURCES] <source>...
#                    [TARGET <target>]            # default: ember-<name>
#                    [OUTPUT_DIRECTORY <dir>]     # where libember-<name>.so is written
#                    [INSTALL_DESTINATION <dir>]) # add an install rule (e.g. ${EMBER_PLUGIN_INSTALL_DIR})
#
# What it sets up, and why:
#   - a MODULE library (dlopen-only, never linked against) whose file is
#     libember-<name>.so: the loader derives the plugin's name from the file
#     name and refuses the plugin when its table calls itself otherwise;
#   - <name> is checked here as the loader does: lower-case letters, digits,
#     '_' and '-', at most 31 characters;
#   - the include directory of ember_plugin.h (Ember::headers) and NO link
#     to libember: a plugin receives everything it needs from the host
#     services table; -Wl,-z,defs makes a stray em_* call a link error;
#   - hidden visibility, so em_plugin_init (marked EM_PLUGIN_EXPORT) is the
#     only exported symbol, and --exclude-libs,ALL so static libraries linked
#     into the plugin do not export theirs either;
#   - C11 (the headers need it).
# Everything else (warnings, optimisation, extra libraries) is the caller's:
#   target_link_libraries(ember-<name> PRIVATE Threads::Threads m)
include_guard(GLOBAL)

function(ember_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TARGET;OUTPUT_DIRECTORY;INSTALL_DESTINATION" "SOURCES")
  string(LENGTH "${name}" name_length)
  if(NOT name MATCHES "^[a-z0-9_-]+$" OR name_length GREATER 31)
    message(FATAL_ERROR "ember_add_plugin: '${name}' is not a valid plugin name: use 1 to 31 "
            "lower-case letters, digits, '_' or '-' (the loader refuses other names)")
  endif()
  set(sources ${arg_SOURCES} ${arg_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "ember_add_plugin(${name}): no source files given")
  endif()
  set(target "ember-${name}")
  if(arg_TARGET)
    set(target "${arg_TARGET}")
  endif()
  if(NOT TARGET Ember::headers)
    message(FATAL_ERROR "ember_add_plugin(${name}): the target Ember::headers is missing; call "
            "find_package(Ember) first")
  endif()

  add_library(${target} MODULE ${sources})
  target_link_libraries(${target} PRIVATE Ember::headers)
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "ember-${name}"
    SUFFIX ".so"
    C_STANDARD 11
    C_STANDARD_REQUIRED ON
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_options(${target} PRIVATE "LINKER:-z,defs" "LINKER:--exclude-libs,ALL")
  if(arg_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${arg_OUTPUT_DIRECTORY}")
  endif()
  if(arg_INSTALL_DESTINATION)
    install(TARGETS ${target} LIBRARY DESTINATION "${arg_INSTALL_DESTINATION}")
  endif()
endfunction()
