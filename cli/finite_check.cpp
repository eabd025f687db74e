// NaN/Inf checks at the command boundary (see finite_check.h).
#include "finite_check.h"

#include "perceiver/core/error.h"
#include "perceiver/ops/reduce.h"

namespace perceiver::cli {

void add_nonfinite_option(CLI::App& sub, bool& allow) {
  sub.add_flag("--allow-nonfinite", allow,
               "accept NaN/Inf in inputs and weights and write non-finite outputs (default: an error naming the tensor)");
}

void check_finite(const std::string& name, const Tensor& t, const std::string& command, const std::string& file,
                  const std::string& kind, bool allow) {
  if (allow || !t.defined()) return;
  const ops::NonFinite r = ops::count_nonfinite(t);
  if (r)
    throw_error("[", command, "] ", file, ": ", kind, " '", name, "' holds ", r.describe(),
                kind == "output" || kind == "gradient" || kind == "loss"
                    ? "; the inputs and weights are finite, so the computation overflowed"
                    : "",
                "; pass --allow-nonfinite to accept non-finite values");
}

void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& command, const std::string& file,
                  const std::string& kind, bool allow) {
  if (allow) return;
  for (const auto& [name, t] : tensors) check_finite(name, t, command, file, kind, false);
}

void check_finite_parameters(nn::Module& model, const std::string& command, const std::string& file, bool allow) {
  if (allow) return;
  model.visit_parameters([&](const std::string& name, Tensor& p) { check_finite(name, p, command, file, "weight", false); });
}

}  // namespace perceiver::cli
