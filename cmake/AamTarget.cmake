# aam_target_defaults(TARGET): everything every AAM target gets —
# warnings, sanitizers, hardening and the include roots.
function(aam_target_defaults tgt)
  aam_target_warnings(${tgt})
  aam_target_sanitize(${tgt})
  target_compile_definitions(${tgt} PRIVATE _GNU_SOURCE
    AAM_VERSION="${PROJECT_VERSION}")
  if(NOT AAM_SANITIZE AND NOT AAM_FUZZ)
    target_compile_options(${tgt} PRIVATE -fstack-protector-strong
      $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
  endif()
  target_include_directories(${tgt} PRIVATE
    ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR})
endfunction()

# aam_executable(NAME SOURCES... [LIBS ...]): a daemon or tool binary.
function(aam_executable name)
  cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${A_SOURCES} ${A_UNPARSED_ARGUMENTS})
  aam_target_defaults(${name})
  target_link_libraries(${name} PRIVATE aam-common ${A_LIBS})
endfunction()
