// The training plot (see train/plot.h).
#include "perceiver/train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/data/raster.h"

namespace perceiver::train {
namespace {

using data::Canvas;
using data::Rgb;

const Rgb kTrain{31, 119, 180}, kTest{255, 127, 14}, kAxis{60, 60, 60}, kGrid{225, 225, 225}, kText{20, 20, 20};

struct Series {
  std::vector<double> x, y;
  Rgb colour;
  bool markers;
};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// One panel: a title, axes with min/max labels and 5 grid lines, each series as a polyline.
void panel(Canvas& cv, int64_t x0, int64_t y0, int64_t w, int64_t h, const std::string& title,
           const std::vector<Series>& series) {
  const int64_t left = x0 + 64, right = x0 + w - 12, top = y0 + 28, bottom = y0 + h - 36;
  cv.text(left, y0 + 8, title, kText, 2);
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  cv.line(static_cast<double>(left), static_cast<double>(top), static_cast<double>(left), static_cast<double>(bottom), kAxis);
  cv.line(static_cast<double>(left), static_cast<double>(bottom), static_cast<double>(right), static_cast<double>(bottom), kAxis);
  if (!std::isfinite(xmin)) {
    cv.text(left + 10, (top + bottom) / 2, "no values yet", kText);
    return;
  }
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) ymax = ymin + 1e-3 + std::fabs(ymin) * 0.01;
  const double pad = 0.05 * (ymax - ymin);
  ymin -= pad;
  ymax += pad;
  auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * static_cast<double>(right - left); };
  auto py = [&](double y) { return bottom - (y - ymin) / (ymax - ymin) * static_cast<double>(bottom - top); };
  for (int g = 0; g <= 4; ++g) {  // grid lines with their values
    const double v = ymin + (ymax - ymin) * g / 4.0;
    const double y = py(v);
    if (g > 0) cv.line(static_cast<double>(left + 1), y, static_cast<double>(right), y, kGrid);
    const std::string label = number(v);
    cv.text(left - 6 - Canvas::text_width(label), static_cast<int64_t>(y) - 3, label, kText);
  }
  cv.text(left, bottom + 6, number(xmin), kText);
  const std::string xmax_label = number(xmax);
  cv.text(right - Canvas::text_width(xmax_label), bottom + 6, xmax_label, kText);
  cv.text((left + right) / 2 - Canvas::text_width("step") / 2, bottom + 18, "step", kText);
  for (const Series& s : series) {
    for (size_t i = 1; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i - 1]) && std::isfinite(s.y[i]))
        cv.line(px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), s.colour, 2);
    if (s.markers)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i])) {
          const int64_t cx = std::llround(px(s.x[i])), cy = std::llround(py(s.y[i]));
          cv.fill(cx - 2, cy - 2, cx + 2, cy + 2, s.colour);
        }
  }
}

double number_of(const nlohmann::json& r, const char* key) {
  auto it = r.find(key);
  return it != r.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

data::RgbImage training_plot(const std::vector<nlohmann::json>& records, int64_t width, int64_t height) {
  Series train_loss{{}, {}, kTrain, false}, test_loss{{}, {}, kTest, true};
  Series train_acc{{}, {}, kTrain, false}, test_acc{{}, {}, kTest, true};
  bool regression = false;
  for (const nlohmann::json& r : records) {
    if (!r.is_object() || !r.contains("type") || !r.contains("step")) continue;
    const double step = number_of(r, "step");
    if (r["type"] == "train") {
      train_loss.x.push_back(step);
      train_loss.y.push_back(number_of(r, "loss"));
      if (r.contains("accuracy")) {
        train_acc.x.push_back(step);
        train_acc.y.push_back(number_of(r, "accuracy"));
      }
    } else if (r["type"] == "eval") {
      test_loss.x.push_back(step);
      test_loss.y.push_back(number_of(r, "test_loss"));
      regression |= r.contains("test_mse");
      test_acc.x.push_back(step);
      test_acc.y.push_back(number_of(r, regression ? "test_mse" : "test_accuracy"));
    }
  }
  Canvas cv(width, height, {255, 255, 255});
  panel(cv, 0, 0, width / 2, height - 20, "loss", {train_loss, test_loss});
  panel(cv, width / 2, 0, width / 2, height - 20, regression ? "test mean squared error" : "accuracy",
        {train_acc, test_acc});
  // legend
  const int64_t ly = height - 16;
  cv.fill(64, ly + 2, 80, ly + 4, kTrain);
  int64_t x = 86 + cv.text(86, ly, "training batches", kText);
  cv.fill(x + 16, ly + 2, x + 32, ly + 4, kTest);
  cv.text(x + 38, ly, "test set (after each epoch)", kText);
  return cv.image();
}

void write_training_plot(const std::string& metrics_path, const std::string& png_path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(metrics_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      records.push_back(parse_json(line, metrics_path, "metrics"));
    } catch (const Error&) {
      // a torn last line (a crash while appending) is left out of the picture
    }
  }
  data::write_png_rgb(png_path, training_plot(records));
}

}  // namespace perceiver::train
