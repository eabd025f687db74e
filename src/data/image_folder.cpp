// ImageFolder-layout classification sets (see image_folder.h): the listing and split of
// data/class_folders.h, each file decoded and resized.
#include "perceiver/data/image_folder.h"

#include <algorithm>
#include <memory>

#include "perceiver/core/error.h"
#include "perceiver/data/class_folders.h"
#include "perceiver/data/image.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

// The image as float32 (H, W) grey or (H, W, 3) RGB in [0, 1], resized.
void load_into(const std::string& path, const ImageFolderOptions& o, float* out) {
  if (o.channels == 1) {
    const Tensor g = load_image_grey(path, static_cast<int>(o.height), static_cast<int>(o.width), o.max_pixels);
    std::copy(g.f32(), g.f32() + g.numel(), out);
    return;
  }
  const DecodedImage d = decode_image(io::read_file(path), path, o.max_pixels);
  for (int c = 0; c < 3; ++c) {  // each channel resized like a grey image
    Tensor plane = Tensor::empty({d.height, d.width});
    for (int64_t i = 0; i < d.height * d.width; ++i)
      plane.f32()[i] = d.pixels[static_cast<size_t>(i * d.channels + (d.channels == 3 ? c : 0))] / 255.0f;
    const Tensor r = resize_grey(plane, static_cast<int>(o.height), static_cast<int>(o.width));
    for (int64_t i = 0; i < r.numel(); ++i) out[i * 3 + c] = r.f32()[i];
  }
}

}  // namespace

ExampleSource image_folder_source(const ImageFolderOptions& o, bool train) {
  if (o.channels != 1 && o.channels != 3) throw_error("[image_folder] channels must be 1 or 3, got ", o.channels);
  ClassFolderOptions co;
  co.dir = o.dir;
  co.test_fraction = o.test_fraction;
  co.seed = o.seed;
  co.extensions = {".png", ".jpg", ".jpeg"};
  co.who = "image_folder";
  co.noun = "images";
  ClassFolderFiles files = list_class_folders(co, train);
  auto paths = std::make_shared<std::vector<std::string>>(std::move(files.paths));
  const Shape example = o.channels == 1 ? Shape{o.height, o.width} : Shape{o.height, o.width, 3};
  return ExampleSource(example, std::move(files.labels), std::move(files.class_names),
                       [paths, o](int64_t row, float* out) { load_into((*paths)[static_cast<size_t>(row)], o, out); },
                       /*streamed=*/true);
}

Dataset load_image_folder(const ImageFolderOptions& o, bool train) { return image_folder_source(o, train).load_all(); }

}  // namespace perceiver::data
