// The Hugging Face image processors of the vision checkpoints (fixtures preprocessing/README.md
// sections 3-4), from image file to model input:
//   Perceiver (deepmind/vision-perceiver-*): centre crop of a square of side
//     floor(size / crop_size * min(H, W)) at top = ceil((H - s) / 2), left = ceil((W - s) / 2)
//     (v4.19; newer releases use floor), Pillow BICUBIC resize to size x size, then
//     (v / 255 - mean) / std in float32 with the ImageNet mean and std;
//   ViT (google/vit-base-patch16-224): Pillow BILINEAR resize of the whole image, mean = std = 0.5.
// pillow_resize reproduces Pillow 9's fixed-point separable resampling bit for bit (horizontal
// pass first, 8-bit intermediate image, antialiased when shrinking). Errors read
// "[image_processor] <what>: expected ..., got ...".
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "perceiver/core/tensor.h"
#include "perceiver/data/image_codec.h"

namespace perceiver::data {

// 8-bit RGB pixels, row-major (H, W, 3), channel order R, G, B.
struct RgbImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;
  uint8_t at(int64_t y, int64_t x, int c) const { return pixels[static_cast<size_t>((y * width + x) * 3 + c)]; }
};

// An RgbImage over the given pixels (size must be h * w * 3).
RgbImage make_rgb_image(int64_t height, int64_t width, std::vector<uint8_t> pixels);

// Decodes a PNG, JPEG or binary PGM/PPM (data/image_codec.h) to 8-bit RGB like Pillow's convert("RGB"): grey is
// replicated, transparency is dropped; refuses images over max_pixels before decoding them.
RgbImage load_image_rgb(const std::string& path, int64_t max_pixels = kDefaultMaxImagePixels);
RgbImage decode_image_rgb(const std::string& bytes, const std::string& what,
                          int64_t max_pixels = kDefaultMaxImagePixels);

// Pixels [top, top + h) x [left, left + w); the box must lie inside the image.
RgbImage crop(const RgbImage& image, int64_t top, int64_t left, int64_t h, int64_t w);

// Pillow resampling filters by their PIL numbers.
enum class Resample { kBilinear = 2, kBicubic = 3 };

// Image.resize((out_w, out_h), resample) of Pillow 9.4, exactly (README section 4).
RgbImage pillow_resize(const RgbImage& image, int64_t out_h, int64_t out_w, Resample resample);

// Where the Perceiver centre crop sits when the excess (H - s or W - s) is odd.
enum class CropOffset {
  kCeil,   // transformers v4.19 PerceiverFeatureExtractor: ((H - s) + 1) // 2
  kFloor,  // newer PerceiverImageProcessor: (H - s) // 2
};

struct CropBox {
  int64_t top = 0, left = 0, size = 0;
};

// The square crop of the Perceiver processor: side floor(size / crop_size * min(H, W)) (float64).
CropBox perceiver_crop_box(int64_t height, int64_t width, int64_t size, int64_t crop_size, CropOffset offset);

struct ImageProcessorConfig {
  bool do_center_crop = true;  // the Perceiver crop (ViT: false)
  int64_t crop_size = 256;
  CropOffset crop_offset = CropOffset::kCeil;
  bool do_resize = true;
  int64_t size = 224;  // output height = width
  Resample resample = Resample::kBicubic;
  bool do_normalize = true;
  std::array<float, 3> image_mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> image_std{0.229f, 0.224f, 0.225f};
  // timm's evaluation transform (timm.data.create_transform, crop_mode "center") in place of the
  // crop and resize above when set: resize keeping the aspect ratio so that the image covers
  // floor(height / crop_pct) x floor(width / crop_pct) (torchvision Resize of the shorter side
  // when those are equal, timm ResizeKeepRatio otherwise), then torchvision's centre crop of
  // height x width (offsets rounded half to even, as Python's round).
  bool timm = false;
  int64_t height = 0, width = 0;
  double crop_pct = 0.875;
  // 1: the image turns grey first, as Pillow's convert("L") (L = (19595 R + 38470 G + 7471 B +
  // 2^15) >> 16), and is normalised with image_mean[0] and image_std[0] into one channel.
  int64_t channels = 3;
};

// The settings of the deepmind/vision-perceiver-* and google/vit-base-patch16-224 hub processors.
ImageProcessorConfig perceiver_processor_config();
ImageProcessorConfig vit_processor_config();

// Overrides `base` with the fields of an HF preprocessor_config.json (do_center_crop, crop_size,
// do_resize, size (an integer or {"height", "width"} with equal sides, or {"shortest_edge"}),
// resample (2 or 3), do_normalize, image_mean, image_std); unknown keys are ignored as HF does.
ImageProcessorConfig parse_preprocessor_config(const nlohmann::json& j, const std::string& what,
                                               ImageProcessorConfig base);

// The size timm's transform resizes an h x w image to before its centre crop (config.timm).
std::array<int64_t, 2> timm_resized_size(int64_t h, int64_t w, const ImageProcessorConfig& config);

// The 8-bit image after crop and resize (the fixtures' resized_rgb); grey (R = G = B) when
// config.channels is 1.
RgbImage process_rgb(const RgbImage& image, const ImageProcessorConfig& config);

// float32 (C, H, W), C = config.channels: (float(v) / 255 - mean_c) / std_c per channel, or v / 255
// without normalisation (one channel: from R, the grey level process_rgb left).
Tensor to_normalized_chw(const RgbImage& image, const ImageProcessorConfig& config);

// process_rgb + to_normalized_chw for a batch of images of any sizes: (B, C, size, size), or
// (B, C, height, width) for timm.
Tensor preprocess_images(const std::vector<RgbImage>& images, const ImageProcessorConfig& config);

}  // namespace perceiver::data
