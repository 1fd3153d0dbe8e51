# aam_target_sanitize(TARGET): ASan + UBSan when AAM_SANITIZE is on.
# UBSan findings abort, so a test that trips one fails instead of printing.
function(aam_target_sanitize tgt)
  if(AAM_SANITIZE)
    target_compile_options(${tgt} PRIVATE
      -fsanitize=address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer)
    target_link_options(${tgt} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
