#!/bin/bash
# The avx512 kernel variant (CMakeLists.txt) is compiled with AVX-512 flags. Any weak (COMDAT)
# symbol it defines -- an inline function or template instantiation from a shared header, such as
# std::vector<float>::_M_default_append -- may be the copy the linker keeps for the whole program,
# and would then run on CPUs without AVX-512. This check fails if such a symbol's code in the
# avx512 objects holds an instruction the rest of the program may not have: any EVEX-encoded
# (AVX-512) instruction in a native build, where the base code is built for the build machine;
# also any VEX-encoded (AVX, AVX2, FMA) or BMI instruction in a portable build (plain x86-64).
# Usage: check_isa_variant_symbols.sh native|portable OBJECT...
set -euo pipefail
mode="$1"
shift
case "$mode" in
  native) pattern='^ *[0-9a-f]+:[[:space:]]+62 ' ;;  # EVEX prefix (0x62 in 64-bit mode)
  portable) pattern='^ *[0-9a-f]+:[[:space:]]+(62|c4|c5) |[[:space:]](shlx|sarx|shrx|rorx|andn|bextr|bzhi|pdep|pext|tzcnt|lzcnt|movbe)[[:space:]]' ;;
  *) echo "check_isa_variant_symbols: first argument must be native or portable, got '$mode'"; exit 2 ;;
esac
bad=0
for obj in "$@"; do
  while read -r sym; do
    # grep reads everything (no -q): an early exit would SIGPIPE objdump and, under pipefail,
    # make the match look like a failure
    if objdump -d --disassemble="$sym" "$obj" 2>/dev/null | grep -E "$pattern" > /dev/null; then
      echo "check_isa_variant_symbols: $obj: weak symbol $(echo "$sym" | c++filt) uses instructions" \
           "beyond the $mode base ISA; expected none (give shared inline code internal linkage)"
      bad=1
    fi
  done < <(nm --defined-only "$obj" | awk '$2 == "W" || $2 == "V" || $2 == "u" {print $3}')
done
if [ "$bad" -ne 0 ]; then exit 1; fi
echo "check_isa_variant_symbols ($mode): $# objects, no weak symbol beyond the base ISA"
