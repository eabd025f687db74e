// AVX-512 helpers shared by the hot CPU kernels (layer_norm, activation, loss): a masked-tail
// loop driver and a vector expf. Only included when __AVX512F__ is defined.
#pragma once

#if defined(__AVX512F__)
// GCC 12's AVX-512 headers seed masked/reduce intrinsics with _mm512_undefined_ps(), which
// trips -W(maybe-)uninitialized at every use (GCC PR105593); the warning is spurious.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

namespace perceiver::cpu::simd {

constexpr int64_t kWidth = 16;  // floats per __m512

// Calls f(i, mask) for i = 0, 16, 32, ... < n; the last call carries a partial lane mask, so the
// body uses masked loads/stores (_mm512_maskz_loadu_ps / _mm512_mask_storeu_ps) throughout.
template <typename F>
inline void loop(int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + kWidth <= n; i += kWidth) f(i, static_cast<__mmask16>(0xFFFF));
  if (i < n) f(i, static_cast<__mmask16>((1u << (n - i)) - 1u));
}

inline __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline void store(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }

// exp(x) in the Cephes expf scheme: x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-7
// minimax polynomial (about 1 ulp), then 2^n applied by scalef. NaN propagates; x < -104 -> 0.
inline __m512 exp(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(88.3762626647949f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

}  // namespace perceiver::cpu::simd

#endif  // __AVX512F__
