// Image classification sets from folders (the ImageFolder layout): root/<class>/*.png|jpg, or
// root/train/<class>/... with root/val/<class>/... (or test/) as the test set; without those, a
// seeded share of each class's files (by a hash of the file name) is held out. Images of any
// size are decoded with the hardened decoders (data/image_codec.h), converted to grey (BT.601) or
// RGB, and resized to the model's input (area filter when shrinking, bilinear when enlarging):
// inputs (n, H, W) or (n, H, W, 3) in [0, 1]. Hidden files are skipped; any other file is an
// error naming it. Errors read "[image_folder] <path>: ...".
#pragma once

#include <cstdint>
#include <string>

#include "perceiver/data/dataset.h"
#include "perceiver/data/image_codec.h"

namespace perceiver::data {

struct ImageFolderOptions {
  std::string dir;
  int64_t height = 28, width = 28;
  int channels = 1;             // 1: grey, 3: RGB
  double test_fraction = 0.1;   // without train/ + val/ (or test/) subfolders
  uint64_t seed = 0;
  int64_t max_pixels = kDefaultMaxImagePixels;
};

// The training or test part, every image decoded into memory.
Dataset load_image_folder(const ImageFolderOptions& options, bool train);
// The same examples (order, labels, values) listed now and decoded when a batch reads them: a
// file that is missing or corrupt by then is an error naming it at that batch.
ExampleSource image_folder_source(const ImageFolderOptions& options, bool train);

}  // namespace perceiver::data
