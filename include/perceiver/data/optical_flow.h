// Optical flow around the Perceiver IO flow model (DeepMind's optical_flow colab, HF
// PerceiverForOpticalFlow): the model sees a frame pair of exactly train_size pixels as
// (B, 2, 27, H, W) patch features; any larger pair is covered by overlapping tiles of train_size
// (at least min_overlap pixels of overlap, the last tile flush with the border) whose flows are
// blended with distance-to-edge weights w(y, x) = min(y + 1, th - y, x + 1, tw - x).
// Also the Middlebury .flo format (magic 202021.25, width, height, then (u, v) float32 pairs row
// by row), FlyingChairs-layout folders of pairs, end-point-error statistics and the Baker et al.
// (Middlebury) colour-wheel visualisation.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "perceiver/core/tensor.h"
#include "perceiver/data/image_processor.h"

namespace perceiver::data {

// Patch features of a frame pair's window [top, top + h) x [left, left + w): (2, 27, h, w), frame 1
// in slot 0. Each pixel is scaled to [-1, 1] (v / 255 * 2 - 1); channel (dy * 3 + dx) * 3 + c holds
// colour c of the neighbour at (y + dy - 1, x + dx - 1), zero outside the window (TF "SAME"
// padding of the window, as upstream extracts patches per tile).
Tensor flow_patch_features(const RgbImage& frame1, const RgbImage& frame2, int64_t top, int64_t left, int64_t h,
                           int64_t w);

// Top-left corners of the tiles covering an H x W image (upstream compute_grid_indices: starts
// every tile - min_overlap pixels, the last one moved flush with the border; a start that would
// put a tile past the border is clamped, duplicates dropped). Row-major order.
std::vector<std::pair<int64_t, int64_t>> flow_tile_origins(int64_t height, int64_t width, int64_t tile_h,
                                                           int64_t tile_w, int64_t min_overlap);

// Runs `model` on batches of at most tiles_per_batch tiles ((n, 2, 27, th, tw) -> (n, th, tw, 2))
// and blends the tiles' flows: (H, W, 2) float32. A pair of exactly tile size gives the model's
// output unchanged.
using FlowModel = std::function<Tensor(const Tensor& patch_features)>;
Tensor tiled_flow(const RgbImage& frame1, const RgbImage& frame2, int64_t tile_h, int64_t tile_w, int64_t min_overlap,
                  const FlowModel& model, int64_t tiles_per_batch = 1);

// Middlebury .flo: write (atomically) and read a float32 (H, W, 2) flow field.
void write_flo(const std::string& path, const Tensor& flow);
Tensor read_flo(const std::string& path);

// Baker et al. colour coding of a (H, W, 2) flow: hue = direction, saturation = magnitude
// relative to max_flow (<= 0: the largest finite magnitude); unknown (|u| or |v| > 1e9, NaN)
// pixels are black.
RgbImage flow_to_color(const Tensor& flow, float max_flow = 0.0f);

// Writes an 8-bit RGB PNG atomically.
void write_png_rgb(const std::string& path, const RgbImage& image);

// A (u, v) vector is known when both are finite with |.| <= 1e9 (.flo writes 1e10 for unknown).
bool flow_known(float u, float v);

// End-point-error statistics over the known pixels of one or more pairs (pixel-weighted).
struct FlowErrors {
  int64_t pairs = 0, known = 0;  // pairs added, known ground-truth pixels
  double epe_sum = 0;            // sum of ||pred - gt||_2 over known pixels
  int64_t under1 = 0, under3 = 0;  // known pixels with EPE < 1 px, < 3 px
  double epe() const { return known ? epe_sum / static_cast<double>(known) : 0.0; }
  double share_under1() const { return known ? static_cast<double>(under1) / static_cast<double>(known) : 0.0; }
  double share_under3() const { return known ? static_cast<double>(under3) / static_cast<double>(known) : 0.0; }
  void merge(const FlowErrors& o);
};
// Adds pred against gt, both float32 (..., H, W, 2) of the same shape; every leading index is a
// pair. Pixels with unknown gt are skipped; a non-finite prediction on a known pixel counts as an
// infinite error (EPE inf).
void add_flow_errors(const Tensor& pred, const Tensor& gt, FlowErrors& errors);

// FlyingChairs-layout folders: NAME_img1.EXT, NAME_img2.EXT (EXT png, jpg, jpeg, ppm, pgm) and
// NAME_flow.flo per pair, in one folder.
struct FlowPairFiles {
  std::string name, frame1, frame2, flow;
};
// The pairs of dir sorted by name. Errors name the folder, or the pair whose second frame or flow
// is missing; a folder without pairs is an error.
std::vector<FlowPairFiles> list_flow_pairs(const std::string& dir);
struct FlowExample {
  RgbImage frame1, frame2;
  Tensor flow;  // (H, W, 2)
};
// Reads one pair; frames and flow must have the same size (the error names the files).
FlowExample read_flow_pair(const FlowPairFiles& files, int64_t max_pixels = kDefaultMaxImagePixels);
// Writes NAME_img1.png, NAME_img2.png and NAME_flow.flo into dir (each atomically).
void write_flow_pair(const std::string& dir, const std::string& name, const RgbImage& frame1, const RgbImage& frame2,
                     const Tensor& flow);

}  // namespace perceiver::data
