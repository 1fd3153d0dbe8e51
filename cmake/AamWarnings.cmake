# aam_target_warnings(TARGET): the project's warning set, per target.
function(aam_target_warnings tgt)
  target_compile_options(${tgt} PRIVATE
    -Wall -Wextra -Wformat=2 -Wshadow -Wconversion -Wno-sign-conversion
    -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wvla
    -Wundef -Wcast-qual -Wnull-dereference)
  if(AAM_WERROR)
    target_compile_options(${tgt} PRIVATE -Werror)
  endif()
endfunction()
