# aam_target_sanitize(TARGET): ASan + UBSan when AAM_SANITIZE is on.
# UBSan findings abort, so a test that trips one fails instead of printing.
# With AAM_FUZZ every target is built with coverage instrumentation
# (fuzzer-no-link), so libFuzzer sees the library code it exercises, not
# only the fuzz target's own file.
function(aam_target_sanitize tgt)
  if(AAM_SANITIZE)
    target_compile_options(${tgt} PRIVATE
      -fsanitize=address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer)
    target_link_options(${tgt} PRIVATE -fsanitize=address,undefined)
  endif()
  if(AAM_FUZZ)
    target_compile_options(${tgt} PRIVATE -fsanitize=fuzzer-no-link)
    target_link_options(${tgt} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()
