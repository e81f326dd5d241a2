# EmberAbi.cmake — the ABI record of libember and of the plugin ABI, checked
# with libabigail (Debian: abigail-tools; scripts/deps.sh installs it).
#
#   abi/libember.abi  abidw's dump of libember.so (exported functions and
#                     variables, and the public types they reach; opaque
#                     handles stay opaque: --headers-dir api);
#   abi/plugin.abi    the same for abi/plugin_abi.c, a probe whose one
#                     function reaches every type of ember_plugin.h.
# The test sdk_abi (tests/sdk) dumps the current build and runs abidiff
# against the record: any difference fails it, with abidiff's report.
# Recording a deliberate change: cmake --build <build> --target ember-abi-update
# (see abi/README.md for what counts as compatible).
#
# abidw reads DWARF, so with EMBER_ABI_CHECK on, libember and the probe are
# compiled with -g (debug info only: the generated code is the same).
include_guard(GLOBAL)
find_program(EMBER_ABIDW abidw)
find_program(EMBER_ABIDIFF abidiff)
if(EMBER_ABIDW AND EMBER_ABIDIFF)
  set(_ember_abi_default ON)
else()
  set(_ember_abi_default OFF)
endif()
option(EMBER_ABI_CHECK "Compare libember's ABI with abi/*.abi (needs abidw/abidiff from abigail-tools)"
       ${_ember_abi_default})
if(EMBER_ABI_CHECK AND NOT (EMBER_ABIDW AND EMBER_ABIDIFF))
  message(FATAL_ERROR "EMBER_ABI_CHECK=ON but abidw/abidiff were not found: install abigail-tools "
          "(scripts/deps.sh) or pass -DEMBER_ABI_CHECK=OFF")
endif()

if(EMBER_ABI_CHECK)
  target_compile_options(ember PRIVATE -g)
  add_library(ember-abi-probe SHARED ${PROJECT_SOURCE_DIR}/abi/plugin_abi.c)
  target_link_libraries(ember-abi-probe PRIVATE ember_headers)
  target_compile_options(ember-abi-probe PRIVATE -g -O0)
  set_target_properties(ember-abi-probe PROPERTIES
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/abi)
  # abi.sh check|update ABIDW ABIDIFF HEADERS_DIR [LIBRARY RECORD]...
  set(EMBER_ABI_SCRIPT ${PROJECT_SOURCE_DIR}/abi/abi.sh)
  set(EMBER_ABI_ARGS
    ${EMBER_ABIDW} ${EMBER_ABIDIFF} ${PROJECT_SOURCE_DIR}/api
    $<TARGET_FILE:ember> ${PROJECT_SOURCE_DIR}/abi/libember.abi
    $<TARGET_FILE:ember-abi-probe> ${PROJECT_SOURCE_DIR}/abi/plugin.abi)
  add_custom_target(ember-abi-update
    COMMAND bash ${EMBER_ABI_SCRIPT} update ${EMBER_ABI_ARGS}
    DEPENDS ember ember-abi-probe
    COMMENT "Writing abi/libember.abi and abi/plugin.abi from this build"
    VERBATIM)
endif()
