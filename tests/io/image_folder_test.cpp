// ImageFolder-layout data: class folders, train/ + val/ splits or a seeded held-out share, any
// image size resized to the model's input, grey and RGB, hidden files skipped, stray files and
// unknown validation classes named in errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "io_test_util.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/data/image_folder.h"

namespace perceiver {
namespace {

using testing::TempDir;
using testing::throws_error;
using testing::write_bytes;

// A flat PNG of the given size and grey level (RGB when rgb: (v, v/2, 255 - v)).
void write_png(const std::string& path, int64_t h, int64_t w, uint8_t v, bool rgb = false) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::vector<uint8_t> px(static_cast<size_t>(h * w * (rgb ? 3 : 1)));
  for (size_t i = 0; i < px.size(); ++i) px[i] = rgb ? (i % 3 == 0 ? v : i % 3 == 1 ? v / 2 : 255 - v) : v;
  write_bytes(path, data::encode_png(px.data(), h, w, rgb ? 3 : 1, path));
}

TEST(ImageFolder, TrainAndValFoldersResizedGreyAndRgb) {
  TempDir tmp;
  write_png(tmp.file("train/cat/a.png"), 40, 30, 200);
  write_png(tmp.file("train/cat/b.png"), 10, 10, 200, true);
  write_png(tmp.file("train/dog/c.png"), 7, 9, 50);
  write_png(tmp.file("val/dog/d.png"), 28, 28, 50);
  write_bytes(tmp.file("train/dog/.DS_Store"), "junk");  // hidden: skipped
  data::ImageFolderOptions o;
  o.dir = tmp.dir();
  o.height = 12;
  o.width = 16;
  const data::Dataset train = data::load_image_folder(o, true), val = data::load_image_folder(o, false);
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(train.size(), 3);
  EXPECT_EQ(val.size(), 1);
  EXPECT_EQ(train.example_shape(), (Shape{12, 16}));
  EXPECT_EQ(val.labels.data<int32_t>()[0], 1);
  // a flat image stays flat through the resize; the RGB one becomes its BT.601 grey
  const float grey_rgb = (0.299f * 200 + 0.587f * 100 + 0.114f * 55) / 255.0f;
  EXPECT_NEAR(train.inputs.f32()[0], 200 / 255.0f, 1e-5);
  EXPECT_NEAR(train.inputs.f32()[12 * 16 + 5], grey_rgb, 1e-5);
  EXPECT_NEAR(train.inputs.f32()[2 * 12 * 16 + 100], 50 / 255.0f, 1e-5);
  o.channels = 3;
  const data::Dataset rgb = data::load_image_folder(o, true);
  EXPECT_EQ(rgb.example_shape(), (Shape{12, 16, 3}));
  const float* b = rgb.inputs.f32() + 12 * 16 * 3;  // b.png
  EXPECT_NEAR(b[0], 200 / 255.0f, 1e-5);
  EXPECT_NEAR(b[1], 100 / 255.0f, 1e-5);
  EXPECT_NEAR(b[2], 55 / 255.0f, 1e-5);
}

TEST(ImageFolder, SeededSplitJpegAndErrors) {
  TempDir tmp;
  for (int i = 0; i < 20; ++i) write_png(tmp.file("a/" + std::to_string(i) + ".png"), 5, 5, 10);
  for (int i = 0; i < 20; ++i) write_png(tmp.file("b/" + std::to_string(i) + ".png"), 5, 5, 240);
  std::filesystem::copy_file(std::string(PERCEIVER_SOURCE_DIR) + "/tests/data/images/rgb_420.jpg", tmp.file("b/photo.JPG"));
  data::ImageFolderOptions o;
  o.dir = tmp.dir();
  o.height = o.width = 5;
  o.test_fraction = 0.3;
  const int64_t tr = data::load_image_folder(o, true).size(), te = data::load_image_folder(o, false).size();
  EXPECT_EQ(tr + te, 41);
  EXPECT_GT(te, 3);
  EXPECT_GT(tr, 20);
  o.seed = 7;  // another seed, another split
  EXPECT_NE(data::load_image_folder(o, false).size() * 1000 + data::load_image_folder(o, true).size(), te * 1000 + tr);
  write_bytes(tmp.file("a/notes.txt"), "hello");
  EXPECT_TRUE(throws_error([&] { data::load_image_folder(o, true); }, {"notes.txt: not a .png/.jpg/.jpeg file"}));
  std::filesystem::remove(tmp.file("a/notes.txt"));
  write_bytes(tmp.file("a/broken.png"), "\x89PNG\r\n\x1a\n garbage");
  EXPECT_TRUE(throws_error([&] { data::load_image_folder(o, true); }, {"[image] ", "broken.png"}));
  std::filesystem::remove(tmp.file("a/broken.png"));
  TempDir split;
  write_png(split.file("train/a/x.png"), 4, 4, 1);
  write_png(split.file("test/zebra/y.png"), 4, 4, 1);
  o.dir = split.dir();
  EXPECT_TRUE(throws_error([&] { data::load_image_folder(o, false); }, {"class \"zebra\" has no training images"}));
  o.dir = split.file("nothing");
  EXPECT_TRUE(throws_error([&] { data::load_image_folder(o, true); }, {"not a directory"}));
}

}  // namespace
}  // namespace perceiver
