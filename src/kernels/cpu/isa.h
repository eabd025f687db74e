// Run-time choice between the two compiled variants of the SIMD kernels (activation, attention,
// convert, layer_norm, optimizer; see CMakeLists.txt): `avx512` where the CPU has AVX-512 F/BW/DQ/VL (and
// AVX512-BF16 if that variant was compiled with it), `generic` (AVX2 at most) otherwise. The
// environment variable PERCEIVER_ISA=generic|avx512 overrides the choice at first use (an
// unsupported request falls back to generic with a message); tests switch with set_kernel_isa.
#pragma once

namespace perceiver::cpu {

enum class KernelIsa { kGeneric, kAvx512 };

KernelIsa kernel_isa();
bool cpu_supports_avx512_variant();
// Selects a variant for the whole process; returns false (and changes nothing) when the CPU
// cannot run it.
bool set_kernel_isa(KernelIsa isa);
const char* kernel_isa_name(KernelIsa isa);  // "generic" | "avx512"

}  // namespace perceiver::cpu
