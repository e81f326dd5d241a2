# EmberPackage.cmake — the installable SDK: the Ember::headers target, the
# CMake package (EmberConfig.cmake, its version file, EmberTargets.cmake,
# EmberPlugin.cmake), the pkg-config file ember.pc, and the example plugin's
# sources and the backend guide under share/.
#
# Included by the top-level CMakeLists.txt after core/ (the `ember` target)
# exists. The install rules of the targets themselves live next to them
# (core/, backends/*/, tools/); this file adds what belongs to no target.
#
# Installed layout (relative to CMAKE_INSTALL_PREFIX, libdir usually lib/):
#   include/ember/*.h                       the public API and the plugin ABI
#   <libdir>/libember.so.<SOVERSION>...     the library, its SONAME link and dev link
#   <libdir>/ember/libember-<name>.so       first-party plugins (searched by default)
#   <libdir>/cmake/Ember/                   the CMake package
#   <libdir>/pkgconfig/ember.pc             the pkg-config file
#   bin/ember-info, ...                     tools
#   share/ember/plugin-example/             plugins/example, to copy
#   share/doc/ember/writing-a-backend.md    the guide
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The plugin ABI version, read from the header (the one source of truth).
file(STRINGS "${PROJECT_SOURCE_DIR}/api/ember_plugin.h" _ember_abi_lines
     REGEX "^#define EM_PLUGIN_ABI_(MAJOR|MINOR) [0-9]+")
foreach(_line IN LISTS _ember_abi_lines)
  if(_line MATCHES "^#define EM_PLUGIN_ABI_(MAJOR|MINOR) ([0-9]+)")
    set(EMBER_PLUGIN_ABI_${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()
if(NOT DEFINED EMBER_PLUGIN_ABI_MAJOR OR NOT DEFINED EMBER_PLUGIN_ABI_MINOR)
  message(FATAL_ERROR "EmberPackage.cmake: cannot read EM_PLUGIN_ABI_MAJOR/MINOR from api/ember_plugin.h")
endif()

# Ember::headers: the include folder, for plugins (which never link libember).
add_library(ember_headers INTERFACE)
target_include_directories(ember_headers INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/api>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/ember>)
set_target_properties(ember_headers PROPERTIES EXPORT_NAME headers)
add_library(Ember::headers ALIAS ember_headers)
add_library(Ember::ember ALIAS ember)
include(${PROJECT_SOURCE_DIR}/cmake/EmberPlugin.cmake)

set(EMBER_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/Ember")
install(TARGETS ember_headers EXPORT EmberTargets)
install(EXPORT EmberTargets NAMESPACE Ember:: DESTINATION "${EMBER_CMAKE_INSTALL_DIR}")

set(EMBER_PKG_INCLUDE_DIR "${CMAKE_INSTALL_INCLUDEDIR}/ember")
set(EMBER_PKG_PLUGIN_DIR "${CMAKE_INSTALL_LIBDIR}/${EMBER_INSTALL_PLUGIN_SUBDIR}")
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/EmberConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/cmake/EmberConfig.cmake"
  INSTALL_DESTINATION "${EMBER_CMAKE_INSTALL_DIR}"
  PATH_VARS EMBER_PKG_INCLUDE_DIR EMBER_PKG_PLUGIN_DIR)
# While the version is 0.x every minor may break the ABI (the SONAME carries
# the major only from 1.0 on), so a request for 0.1 accepts 0.1.* only.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_ember_compat SameMinorVersion)
else()
  set(_ember_compat SameMajorVersion)
endif()
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/cmake/EmberConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY ${_ember_compat})
install(FILES
  "${PROJECT_BINARY_DIR}/cmake/EmberConfig.cmake"
  "${PROJECT_BINARY_DIR}/cmake/EmberConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/EmberPlugin.cmake"
  DESTINATION "${EMBER_CMAKE_INSTALL_DIR}")

# ember.pc, relocatable: prefix is found from the .pc file's own folder.
set(_ember_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  # absolute install dirs (as some distributions pass): not relocatable
  set(EMBER_PC_PREFIX_FROM_PCDIR "")
  set(EMBER_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(EMBER_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}/ember")
else()
  file(RELATIVE_PATH EMBER_PC_PREFIX_FROM_PCDIR "/prefix/${_ember_pc_dir}" "/prefix")
  string(REGEX REPLACE "/$" "" EMBER_PC_PREFIX_FROM_PCDIR "${EMBER_PC_PREFIX_FROM_PCDIR}")
  set(EMBER_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(EMBER_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}/ember")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/ember.pc.in" "${PROJECT_BINARY_DIR}/ember.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/ember.pc" DESTINATION "${_ember_pc_dir}")

# What a backend author starts from.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/plugins/example/"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/ember/plugin-example")
install(FILES "${PROJECT_SOURCE_DIR}/docs/writing-a-backend.md" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
