// The --allow-nonfinite flag (see finite_check.h).
#include "finite_check.h"

namespace perceiver::cli {

void add_nonfinite_option(CLI::App& sub, bool& allow) {
  sub.add_flag("--allow-nonfinite", allow,
               "accept NaN/Inf in inputs and weights and write non-finite outputs (default: an error naming the tensor)");
}

}  // namespace perceiver::cli
