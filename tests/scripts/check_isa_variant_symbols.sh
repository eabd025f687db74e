#!/bin/bash
# The avx512 kernel variant (CMakeLists.txt) is compiled with AVX-512 flags. Any weak (COMDAT)
# symbol it defines -- an inline function or template instantiation from a shared header, such as
# std::vector<float>::_M_default_append -- may be the copy the linker keeps for the whole program,
# and would then run on CPUs without AVX-512. This check fails if such a symbol's code in the
# avx512 objects uses AVX-512 registers (zmm, mask registers), naming the symbol.
# Usage: check_isa_variant_symbols.sh OBJECT...
set -euo pipefail
bad=0
for obj in "$@"; do
  while read -r sym; do
    if objdump -d --no-show-raw-insn --disassemble="$sym" "$obj" 2>/dev/null | grep -qE '%zmm|%k[1-7]'; then
      echo "check_isa_variant_symbols: $obj: weak symbol $(echo "$sym" | c++filt) contains AVX-512 code;" \
           "expected none (keep shared inline code out of the avx512 variant or give it internal linkage)"
      bad=1
    fi
  done < <(nm --defined-only "$obj" | awk '$2 == "W" || $2 == "V" || $2 == "u" {print $3}')
done
if [ "$bad" -ne 0 ]; then exit 1; fi
echo "check_isa_variant_symbols: $# objects, no weak symbol with AVX-512 code"
