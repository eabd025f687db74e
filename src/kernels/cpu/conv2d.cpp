// 2-D convolution kernels: im2col (Caffe layout, strided copies with the padding zero-filled)
// feeding cpu::gemm, and col2im for the input gradient. Batches are split into one chunk per
// thread, each with its own buffers and serial GEMMs; a single chunk (B == 1 or one thread)
// instead threads im2col/col2im and lets each GEMM use all threads. Within a chunk, images with
// small maps go through one GEMM per group of images (columns image after image), so that the
// GEMM sees ~kTargetCols columns instead of a few dozen: the call and packing overhead of a GEMM
// per 7 x 7 image would otherwise dominate (BoTNet's late stages).
#include "kernels/cpu/conv2d.h"

#include <algorithm>

#include "kernels/cpu/copy_rows.h"
#include "kernels/cpu/gemm.h"
#include "perceiver/core/parallel.h"

namespace perceiver::cpu {
namespace {

constexpr int64_t kGrainElems = 1 << 14;  // copied elements per thread before splitting pays off
constexpr int64_t kTargetCols = 1024;     // GEMM columns (images x output pixels) worth one call

int64_t chunks_for(const Conv2dGeom& g) {
  return std::max<int64_t>(1, std::min<int64_t>(num_threads(), g.B));
}

// Images per GEMM: 1 for maps of kTargetCols pixels or more, else as many as reach it (at most
// a chunk's worth).
int64_t group_for(const Conv2dGeom& g) {
  const int64_t chunk_images = (g.B + chunks_for(g) - 1) / chunks_for(g);
  return std::max<int64_t>(1, std::min(chunk_images, kTargetCols / std::max<int64_t>(g.P(), 1)));
}

// Column buffer of a chunk: (K, G P); none for a pointwise convolution one image at a time (the
// image is its own column matrix).
int64_t col_floats(const Conv2dGeom& g) {
  const int64_t group = group_for(g);
  return g.pointwise() && group == 1 ? 0 : g.K() * group * g.P();
}

// Output (forward) or output-gradient (backward) staging of a group: (Cout, G P).
int64_t stage_floats(const Conv2dGeom& g) {
  const int64_t group = group_for(g);
  return group == 1 ? 0 : g.Cout * group * g.P();
}

int64_t chunk_floats(const Conv2dGeom& g) { return col_floats(g) + stage_floats(g); }

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

// Calls images(b0, b1, chunk, threaded) for each chunk of the batch: chunks run in parallel with
// serial GEMMs when there are several; a single chunk runs here with threaded GEMMs.
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

// The column matrix (K, n P) of images x .. x + n (stride `in_img`): im2col of each image into
// its P columns (for a pointwise convolution, im2col's "same" path copies the channel rows).
void group_columns(float* col, const float* x, int64_t in_img, int64_t n, const Conv2dGeom& g, bool threaded) {
  const int64_t P = g.P(), ld = n * P;
  maybe_parallel(threaded, g.K(), std::max<int64_t>(1, kGrainElems / std::max<int64_t>(ld, 1)),
                 [&](int64_t r0, int64_t r1) {
                   for (int64_t i = 0; i < n; ++i) im2col(col + i * P, ld, x + i * in_img, g, r0, r1);
                 });
}

}  // namespace

int64_t conv2d_forward_workspace(const Conv2dGeom& g) { return chunks_for(g) * chunk_floats(g); }

int64_t conv2d_backward_workspace(const Conv2dGeom& g) {
  const int64_t chunks = chunks_for(g);
  return chunks * chunk_floats(g) + (chunks - 1) * g.Cout * g.K();
}

void im2col(float* col, int64_t ld, const float* x, const Conv2dGeom& g, int64_t r0, int64_t r1) {
  // "Same" convolutions (stride 1, output size = input size, e.g. 3 x 3 with padding 1): row
  // (ci, i, j) is the whole plane shifted by (i - ph) rows and (j - pw) columns, so it is one
  // contiguous copy, then zeros where the shift leaves the image (rows at the ends, columns that
  // wrapped around to the neighbouring row).
  const bool same = g.sh == 1 && g.sw == 1 && g.OH == g.H && g.OW == g.W;
  if (same) {
    const int64_t P = g.P();
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t ci = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
      const float* xc = x + ci * P;
      float* __restrict d = col + r * ld;
      const int64_t delta = (i - g.ph) * g.W + (j - g.pw);  // d[k] = xc[k + delta] where inside
      const int64_t k0 = std::min<int64_t>(P, std::max<int64_t>(0, -delta)), k1 = std::min<int64_t>(P, P - delta);
      for (int64_t k = 0; k < k0; ++k) d[k] = 0.0f;
#pragma omp simd
      for (int64_t k = k0; k < k1; ++k) d[k] = xc[k + delta];
      for (int64_t k = std::max(k1, k0); k < P; ++k) d[k] = 0.0f;
      const int64_t cshift = j - g.pw;  // columns [0, -cshift) or [W - cshift, W) wrapped around
      if (cshift != 0) {
        const int64_t c0 = cshift < 0 ? 0 : g.W - cshift, c1 = cshift < 0 ? -cshift : g.W;
        for (int64_t oh = 0; oh < g.OH; ++oh)
          for (int64_t c = std::max<int64_t>(c0, 0); c < std::min(c1, g.W); ++c) d[oh * g.W + c] = 0.0f;
      }
    }
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t ci = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
    const float* xc = x + ci * g.H * g.W;
    int64_t lo, hi;
    valid_cols(g, j, &lo, &hi);
    // Inline loops rather than fill/memcpy calls: rows of small maps (7 x 7 in BoTNet's last
    // stages) are a few floats long, where a library call per piece costs more than the copy.
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      float* __restrict d = col + r * ld + oh * g.OW;
      const int64_t ih = oh * g.sh + i - g.ph;
      const int64_t l = ih < 0 || ih >= g.H ? g.OW : lo, h = ih < 0 || ih >= g.H ? g.OW : hi;
      for (int64_t ow = 0; ow < l; ++ow) d[ow] = 0.0f;
      if (l < h) {
        const float* s = xc + ih * g.W + (l * g.sw + j - g.pw);
        if (g.sw == 1) {
#pragma omp simd
          for (int64_t ow = l; ow < h; ++ow) d[ow] = s[ow - l];
        } else {
          for (int64_t ow = l; ow < h; ++ow) d[ow] = s[(ow - l) * g.sw];
        }
      }
      for (int64_t ow = h; ow < g.OW; ++ow) d[ow] = 0.0f;
    }
  }
}

void col2im(float* dx, const float* col, int64_t ld, const Conv2dGeom& g, int64_t c0, int64_t c1) {
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
          const float* s = col + r * ld + oh * g.OW;
          float* d = dxc + ih * g.W + (lo * g.sw + j - g.pw);
          for (int64_t ow = lo; ow < hi; ++ow) d[(ow - lo) * g.sw] += s[ow];
        }
      }
    }
  }
}

void conv2d_forward(float* y, const float* x, const float* w, const float* bias,
                    const Conv2dGeom& g, float* workspace) {
  const int64_t K = g.K(), P = g.P(), in_img = g.Cin * g.H * g.W, out_img = g.Cout * P;
  // sizes fixed here: inside a parallel region num_threads() (and so group_for) may differ
  const int64_t group = group_for(g), per_chunk = chunk_floats(g), cols_per_chunk = col_floats(g);
  for_chunks(g, [&](int64_t b0, int64_t b1, int64_t chunk, bool threaded) {
    float* col = workspace + chunk * per_chunk;
    float* stage = col + cols_per_chunk;
    for (int64_t b = b0; b < b1; b += group) {
      const int64_t n = std::min(group, b1 - b), ld = n * P;
      const float* cols = x + b * in_img;  // a pointwise convolution of one image reads it in place
      if (!(g.pointwise() && n == 1)) {
        group_columns(col, x + b * in_img, in_img, n, g, threaded);
        cols = col;
      }
      // out (Cout, n P) = w (Cout, K) @ cols (K, n P): y_b itself for one image, else the stage
      float* out = n == 1 ? y + b * out_img : stage;
      float beta = 0.0f;
      if (n == 1 && bias != nullptr) {  // rows start as the bias; the GEMM accumulates (beta = 1)
        for (int64_t co = 0; co < g.Cout; ++co) std::fill(out + co * P, out + (co + 1) * P, bias[co]);
        beta = 1.0f;
      }
      gemm(false, false, g.Cout, ld, K, 1.0f, w, K, cols, ld, beta, out, ld);
      if (n == 1) continue;
      for (int64_t i = 0; i < n; ++i) {  // y_{b+i} (Cout, P) = stage columns [i P, (i + 1) P) + bias
        float* yi = y + (b + i) * out_img;
        copy_rows(yi, P, stage + i * P, ld, g.Cout, P);
        if (bias != nullptr)
          for (int64_t co = 0; co < g.Cout; ++co) {
            float* __restrict row = yi + co * P;
            const float v = bias[co];
#pragma omp simd
            for (int64_t p = 0; p < P; ++p) row[p] += v;
          }
      }
    }
  });
}

void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x,
                     const float* w, const Conv2dGeom& g, float* workspace) {
  const int64_t K = g.K(), P = g.P(), in_img = g.Cin * g.H * g.W, out_img = g.Cout * P;
  // sizes fixed here: inside a parallel region num_threads() (and so group_for) may differ
  const int64_t chunks = chunks_for(g), group = group_for(g), per_chunk = chunk_floats(g),
                cols_per_chunk = col_floats(g);
  float* partials = workspace + chunks * per_chunk;  // dw of chunks 1.. (chunk 0 writes dw)
  if (dx != nullptr || dw != nullptr) {
    for_chunks(g, [&](int64_t b0, int64_t b1, int64_t chunk, bool threaded) {
      float* col = workspace + chunk * per_chunk;
      float* stage = col + cols_per_chunk;
      float* dwc = chunk == 0 ? dw : partials + (chunk - 1) * g.Cout * K;
      const int64_t row_grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(P, 1));
      for (int64_t b = b0; b < b1; b += group) {
        const int64_t n = std::min(group, b1 - b), ld = n * P;
        const float* xb = x + b * in_img;
        // dys (Cout, n P): dy_b itself for one image, else the images' rows side by side
        const float* dys = dy + b * out_img;
        if (n > 1) {
          for (int64_t i = 0; i < n; ++i) copy_rows(stage + i * P, ld, dy + (b + i) * out_img, P, g.Cout, P);
          dys = stage;
        }
        if (dw != nullptr) {  // dw (Cout, K) += dys (Cout, n P) @ cols^T (n P, K)
          const float* cols = xb;
          if (!(g.pointwise() && n == 1)) {
            group_columns(col, xb, in_img, n, g, threaded);
            cols = col;
          }
          gemm(false, true, g.Cout, K, ld, 1.0f, dys, ld, cols, ld, b == b0 ? 0.0f : 1.0f, dwc, K);
        }
        if (dx == nullptr) continue;
        // dcol (K, n P) = w^T (K, Cout) @ dys (Cout, n P); dx = col2im(dcol) per image
        float* dxb = dx + b * in_img;
        if (g.pointwise() && n == 1) {
          gemm(true, false, K, P, g.Cout, 1.0f, w, K, dys, P, 0.0f, dxb, P);
          continue;
        }
        gemm(true, false, K, ld, g.Cout, 1.0f, w, K, dys, ld, 0.0f, col, ld);
        for (int64_t i = 0; i < n; ++i) {
          float* dxi = dxb + i * in_img;
          if (g.pointwise()) {
            copy_rows(dxi, P, col + i * P, ld, g.Cin, P);
            continue;
          }
          std::fill(dxi, dxi + in_img, 0.0f);
          maybe_parallel(threaded, g.Cin, std::max<int64_t>(1, row_grain / (g.kh * g.kw)),
                         [&](int64_t c0, int64_t c1) { col2im(dxi, col + i * P, ld, g, c0, c1); });
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
