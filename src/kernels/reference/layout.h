// Reference layout changes: plain loops, the oracle for kernels/cpu/layout.
#pragma once

#include <cstdint>

namespace perceiver::ref {

// y[b, s, c] = x[b, c, s] (x.permute(0, 2, 3, 1).reshape(B, -1, C) for NCHW, S = H * W).
template <typename T>
void channels_last_tokens(T* y, const T* x, int64_t B, int64_t C, int64_t S) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) y[(b * S + s) * C + c] = x[(b * C + c) * S + s];
}

// dx[b, c, s] = dy[b, s, c].
template <typename T>
void channels_last_tokens_backward(T* dx, const T* dy, int64_t B, int64_t C, int64_t S) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < S; ++s) dx[(b * C + c) * S + s] = dy[(b * S + s) * C + c];
}

// Calls copy(y index, x index) for every element of image_patches' output, with x index -1
// where the neighbour falls outside the image; x (B, H, W, C), y (B, H, W, k*k*C).
template <typename Copy>
void for_each_patch_element(int64_t B, int64_t H, int64_t W, int64_t C, int64_t k, Copy copy) {
  const int64_t r = k / 2, F = k * k * C;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j)
        for (int64_t u = 0; u < k; ++u)
          for (int64_t v = 0; v < k; ++v)
            for (int64_t c = 0; c < C; ++c) {
              const int64_t si = i + u - r, sj = j + v - r;
              const bool inside = si >= 0 && si < H && sj >= 0 && sj < W;
              copy(((b * H + i) * W + j) * F + (u * k + v) * C + c, inside ? ((b * H + si) * W + sj) * C + c : -1);
            }
}

// y[b, i, j, (u*k + v)*C + c] = x[b, i + u - k/2, j + v - k/2, c], 0 outside.
template <typename T>
void image_patches(T* y, const T* x, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k) {
  for_each_patch_element(B, H, W, C, k, [&](int64_t yi, int64_t xi) { y[yi] = xi < 0 ? T(0) : x[xi]; });
}

// dx = the adjoint of image_patches: each dy element added back to the pixel it was copied from.
template <typename T>
void image_patches_backward(T* dx, const T* dy, int64_t B, int64_t H, int64_t W, int64_t C, int64_t k) {
  for (int64_t n = 0; n < B * H * W * C; ++n) dx[n] = T(0);
  for_each_patch_element(B, H, W, C, k, [&](int64_t yi, int64_t xi) {
    if (xi >= 0) dx[xi] += dy[yi];
  });
}

}  // namespace perceiver::ref
