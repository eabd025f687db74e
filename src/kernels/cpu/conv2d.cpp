// 2-D convolution kernels: im2col (Caffe layout, strided copies with the padding zero-filled)
// feeding cpu::gemm, and col2im for the input gradient. Batches are split into one chunk per
// thread, each with its own column buffer and serial GEMMs; a single chunk (B == 1 or one
// thread) instead threads im2col/col2im and lets each GEMM use all threads.
#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemm.h"
#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 14;  // copied elements per thread before splitting pays off

int64_t chunks_for(const Conv2dGeom& g) {
  return std::max<int64_t>(1, std::min<int64_t>(num_threads(), g.B));
}

int64_t col_floats(const Conv2dGeom& g) { return g.pointwise() ? 0 : g.K() * g.P(); }

// Output columns ow whose input column ow*sw + j - pw lies in [0, W): [lo, hi).
void valid_cols(const Conv2dGeom& g, int64_t j, int64_t* lo, int64_t* hi) {
  const int64_t first = g.pw - j;          // ow*sw >= first
  const int64_t last = g.W - 1 + g.pw - j;  // ow*sw <= last
  const int64_t h = last < 0 ? 0 : std::min<int64_t>(g.OW, last / g.sw + 1);
  const int64_t l = first <= 0 ? 0 : (first + g.sw - 1) / g.sw;
  *hi = h;
  *lo = std::min(l, h);
}

// fn(begin, end) over [0, n): threaded when `threaded`, else one call.
template <typename F>
void maybe_parallel(bool threaded, int64_t n, int64_t grain, F&& fn) {
  if (threaded)
    parallel_for(n, grain, fn);
  else
    fn(0, n);
}

// Calls images(b0, b1, chunk) for each chunk of the batch: chunks run in parallel with serial
// GEMMs when there are several; a single chunk runs here with threaded GEMMs.
template <typename F>
void for_chunks(const Conv2dGeom& g, F&& images) {
  const int64_t chunks = chunks_for(g);
  if (chunks == 1) {
    images(0, g.B, 0, true);
    return;
  }
  SerialGemmScope serial;
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) images(g.B * c / chunks, g.B * (c + 1) / chunks, c, false);
  });
}

}  // namespace

int64_t conv2d_forward_workspace(const Conv2dGeom& g) { return chunks_for(g) * col_floats(g); }

int64_t conv2d_backward_workspace(const Conv2dGeom& g) {
  const int64_t chunks = chunks_for(g);
  return chunks * col_floats(g) + (chunks - 1) * g.Cout * g.K();
}

void im2col(float* col, const float* x, const Conv2dGeom& g, int64_t r0, int64_t r1) {
  const int64_t P = g.P();
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t ci = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
    const float* xc = x + ci * g.H * g.W;
    int64_t lo, hi;
    valid_cols(g, j, &lo, &hi);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      float* d = col + r * P + oh * g.OW;
      const int64_t ih = oh * g.sh + i - g.ph;
      if (ih < 0 || ih >= g.H || lo == hi) {
        std::fill(d, d + g.OW, 0.0f);
        continue;
      }
      std::fill(d, d + lo, 0.0f);
      const float* s = xc + ih * g.W + (lo * g.sw + j - g.pw);
      if (g.sw == 1) {
        std::memcpy(d + lo, s, static_cast<size_t>(hi - lo) * sizeof(float));
      } else {
        for (int64_t ow = lo; ow < hi; ++ow) d[ow] = s[(ow - lo) * g.sw];
      }
      std::fill(d + hi, d + g.OW, 0.0f);
    }
  }
}

void col2im(float* dx, const float* col, const Conv2dGeom& g, int64_t c0, int64_t c1) {
  const int64_t P = g.P();
  for (int64_t ci = c0; ci < c1; ++ci) {
    float* dxc = dx + ci * g.H * g.W;
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t r = (ci * g.kh + i) * g.kw + j;
        int64_t lo, hi;
        valid_cols(g, j, &lo, &hi);
        if (lo == hi) continue;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.sh + i - g.ph;
          if (ih < 0 || ih >= g.H) continue;
          const float* s = col + r * P + oh * g.OW;
          float* d = dxc + ih * g.W + (lo * g.sw + j - g.pw);
          for (int64_t ow = lo; ow < hi; ++ow) d[(ow - lo) * g.sw] += s[ow];
        }
      }
    }
  }
}

void conv2d_forward(float* y, const float* x, const float* w, const float* bias,
                    const Conv2dGeom& g, float* workspace) {
  const int64_t K = g.K(), P = g.P(), in_img = g.Cin * g.H * g.W;
  for_chunks(g, [&](int64_t b0, int64_t b1, int64_t chunk, bool threaded) {
    float* col = workspace + chunk * col_floats(g);
    for (int64_t b = b0; b < b1; ++b) {
      const float* xb = x + b * in_img;
      float* yb = y + b * g.Cout * P;
      const float* cols = xb;
      if (!g.pointwise()) {
        maybe_parallel(threaded, K, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(P, 1)),
                       [&](int64_t r0, int64_t r1) { im2col(col, xb, g, r0, r1); });
        cols = col;
      }
      float beta = 0.0f;
      if (bias != nullptr) {  // rows start as the bias; the GEMM accumulates (beta = 1)
        for (int64_t co = 0; co < g.Cout; ++co) std::fill(yb + co * P, yb + (co + 1) * P, bias[co]);
        beta = 1.0f;
      }
      // y_b (Cout, P) = w (Cout, K) @ col_b (K, P)
      gemm(false, false, g.Cout, P, K, 1.0f, w, K, cols, P, beta, yb, P);
    }
  });
}

void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dGeom& g, float* workspace) {
  const int64_t K = g.K(), P = g.P(), in_img = g.Cin * g.H * g.W;
  const int64_t chunks = chunks_for(g);
  float* partials = workspace + chunks * col_floats(g);  // dw of chunks 1.. (chunk 0 writes dw)
  if (dx != nullptr || dw != nullptr) {
    for_chunks(g, [&](int64_t b0, int64_t b1, int64_t chunk, bool threaded) {
      float* col = workspace + chunk * col_floats(g);
      float* dwc = chunk == 0 ? dw : partials + (chunk - 1) * g.Cout * K;
      const int64_t row_grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(P, 1));
      for (int64_t b = b0; b < b1; ++b) {
        const float* xb = x + b * in_img;
        const float* dyb = dy + b * g.Cout * P;
        if (dw != nullptr) {  // dw (Cout, K) += dy_b (Cout, P) @ col_b^T (P, K)
          const float* cols = xb;
          if (!g.pointwise()) {
            maybe_parallel(threaded, K, row_grain, [&](int64_t r0, int64_t r1) { im2col(col, xb, g, r0, r1); });
            cols = col;
          }
          gemm(false, true, g.Cout, K, P, 1.0f, dyb, P, cols, P, b == b0 ? 0.0f : 1.0f, dwc, K);
        }
        if (dx != nullptr) {  // dcol (K, P) = w^T (K, Cout) @ dy_b (Cout, P); dx_b = col2im(dcol)
          float* dxb = dx + b * in_img;
          if (g.pointwise()) {
            gemm(true, false, K, P, g.Cout, 1.0f, w, K, dyb, P, 0.0f, dxb, P);
          } else {
            gemm(true, false, K, P, g.Cout, 1.0f, w, K, dyb, P, 0.0f, col, P);
            std::fill(dxb, dxb + in_img, 0.0f);
            maybe_parallel(threaded, g.Cin, std::max<int64_t>(1, row_grain / (g.kh * g.kw)),
                           [&](int64_t c0, int64_t c1) { col2im(dxb, col, g, c0, c1); });
          }
        }
      }
    });
  }
  if (dw != nullptr) {
    if (g.B == 0) std::fill(dw, dw + g.Cout * K, 0.0f);
    for (int64_t c = 1; c < chunks; ++c) {
      const float* p = partials + (c - 1) * g.Cout * K;
      for (int64_t i = 0; i < g.Cout * K; ++i) dw[i] += p[i];
    }
  }
  if (db != nullptr) {  // per-row float sums, accumulated across rows in double
    for (int64_t co = 0; co < g.Cout; ++co) {
      double acc = 0.0;
      for (int64_t b = 0; b < g.B; ++b) {
        const float* r = dy + (b * g.Cout + co) * P;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t p = 0; p < P; ++p) s += r[p];
        acc += s;
      }
      db[co] = static_cast<float>(acc);
    }
  }
}

}  // namespace perceiver::cpu
