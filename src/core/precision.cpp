// Precision names.
#include "perceiver/core/precision.h"

#include "perceiver/core/error.h"

namespace perceiver {

Precision parse_precision(const std::string& name) {
  if (name == "f32" || name == "fp32" || name == "float32") return Precision::kF32;
  if (name == "bf16" || name == "bfloat16") return Precision::kBF16;
  throw_error("[precision] unknown precision '", name, "', expected f32 or bf16");
}

const char* precision_name(Precision p) { return p == Precision::kBF16 ? "bf16" : "f32"; }

}  // namespace perceiver
