// Seeded, serialisable random numbers (PCG32), so training runs are reproducible and a resumed
// run continues the exact stream of an uninterrupted one.
#pragma once

#include <cstdint>

namespace perceiver {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0x853c49e6748fea9bULL, uint64_t stream = 0xda3e39cb94b95bdbULL);
  uint32_t next_u32();
  float uniform();                      // [0, 1)
  float normal();                       // standard normal (Box-Muller, no cached state)
  uint32_t below(uint32_t n);           // uniform integer in [0, n), unbiased
  uint64_t state() const { return state_; }
  uint64_t inc() const { return inc_; }
  void set_state(uint64_t state, uint64_t inc) { state_ = state; inc_ = inc; }

 private:
  uint64_t state_ = 0, inc_ = 0;
};

}  // namespace perceiver
