// The canvas (data/raster.h) and the training plot (train/plot.h).
#include <gtest/gtest.h>

#include <fstream>

#include "perceiver/data/raster.h"
#include "perceiver/train/plot.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

// Whether colour c appears in columns [x0, x1) above the legend (the last 20 rows).
bool has_colour(const data::RgbImage& img, int64_t x0, int64_t x1, data::Rgb c) {
  for (int64_t y = 0; y < img.height - 20; ++y)
    for (int64_t x = x0; x < x1; ++x)
      if (img.at(y, x, 0) == c[0] && img.at(y, x, 1) == c[1] && img.at(y, x, 2) == c[2]) return true;
  return false;
}

TEST(Raster, GlyphsLinesAndClipping) {
  data::Canvas cv(20, 10, {255, 255, 255});
  EXPECT_EQ(cv.text(0, 0, "1", {0, 0, 0}), 6);
  // '1': rows 00100 01100 00100 ... 01110
  EXPECT_EQ(cv.image().at(0, 2, 0), 0);
  EXPECT_EQ(cv.image().at(0, 1, 0), 255);
  EXPECT_EQ(cv.image().at(1, 1, 0), 0);
  EXPECT_EQ(cv.image().at(6, 3, 0), 0);
  cv.line(-5, 9, 100, 9, {10, 20, 30});  // clipped, no crash
  EXPECT_EQ(cv.image().at(9, 19, 2), 30);
  cv.line(0, 0, std::nan(""), 3, {1, 1, 1});  // ignored
  cv.fill(-3, -3, 100, -1, {5, 5, 5});        // entirely outside
  EXPECT_EQ(data::Canvas::text_width("abc", 2), 36);
}

TEST(TrainingPlot, DrawsBothSeriesAndSurvivesATornFile) {
  std::vector<nlohmann::json> records;
  for (int s = 0; s <= 300; s += 10)
    records.push_back({{"type", "train"}, {"step", s}, {"epoch", s / 100 + 1}, {"loss", 2.0 / (1 + s / 50.0)},
                       {"accuracy", 0.5 + s / 1000.0}});
  for (int e = 1; e <= 3; ++e)
    records.push_back({{"type", "eval"}, {"step", e * 100}, {"epoch", e}, {"test_loss", 1.0 / e}, {"test_accuracy", 0.6 + 0.1 * e}});
  const data::RgbImage img = train::training_plot(records, 800, 300);
  EXPECT_EQ(img.width, 800);
  EXPECT_EQ(img.height, 300);
  const data::Rgb train_colour{31, 119, 180}, test_colour{255, 127, 14};
  for (int64_t half : {0, 1}) {  // each panel holds both series
    EXPECT_TRUE(has_colour(img, half * 400 + 64, half * 400 + 400, train_colour)) << half;
    EXPECT_TRUE(has_colour(img, half * 400 + 64, half * 400 + 400, test_colour)) << half;
  }
  const data::RgbImage empty = train::training_plot({}, 800, 300);
  EXPECT_FALSE(has_colour(empty, 0, 800, test_colour));
  EXPECT_FALSE(has_colour(empty, 0, 800, train_colour));

  testing::TempDir tmp;
  {
    std::ofstream f(tmp.path + "/metrics.jsonl");
    for (const auto& r : records) f << r.dump() << "\n";
    f << "{\"type\": \"train\", \"ste";  // a torn last line
  }
  train::write_training_plot(tmp.path + "/metrics.jsonl", tmp.path + "/plot.png");
  const data::RgbImage png = data::load_image_rgb(tmp.path + "/plot.png");
  EXPECT_EQ(png.width, 960);
  EXPECT_TRUE(has_colour(png, 0, 480, test_colour));
}

}  // namespace
}  // namespace perceiver
