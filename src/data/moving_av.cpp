// Moving Fashion-MNIST + FSDD clips (see data/moving_av.h): item shrinking, the four motion
// paths, soundtrack windowing, FSDD loading by digit, PSNR.
#include "perceiver/data/moving_av.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "perceiver/core/error.h"
#include "perceiver/data/wav.h"

namespace perceiver::data {
namespace {

constexpr int64_t kItemSide = 28;

// Area-average shrink of a 28 x 28 item to n x n.
std::vector<float> shrink_item(const float* item, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n * n), 0.0f);
  const double f = static_cast<double>(kItemSide) / n;
  for (int64_t y = 0; y < n; ++y)
    for (int64_t x = 0; x < n; ++x) {
      const double y0 = y * f, y1 = (y + 1) * f, x0 = x * f, x1 = (x + 1) * f;
      double acc = 0, area = 0;
      for (int64_t yy = static_cast<int64_t>(y0); yy < std::min<int64_t>(kItemSide, static_cast<int64_t>(std::ceil(y1))); ++yy)
        for (int64_t xx = static_cast<int64_t>(x0); xx < std::min<int64_t>(kItemSide, static_cast<int64_t>(std::ceil(x1))); ++xx) {
          const double w = (std::min<double>(yy + 1, y1) - std::max<double>(yy, y0)) *
                           (std::min<double>(xx + 1, x1) - std::max<double>(xx, x0));
          acc += w * item[yy * kItemSide + xx];
          area += w;
        }
      out[static_cast<size_t>(y * n + x)] = static_cast<float>(acc / area);
    }
  return out;
}

// A bounce between 0 and 1 over one period: t in [0, 1) -> 0 .. 1 .. 0.
double bounce(double t) { return 1.0 - std::fabs(2.0 * (t - std::floor(t)) - 1.0); }

// The item's top-left corner at time t in [0, 1) for a motion class, within [0, span]^2.
void path(int motion, double t, double span, double& x, double& y) {
  const double mid = span / 2;
  switch (motion) {
    case 0: x = span * bounce(t), y = mid; break;                    // horizontal
    case 1: x = mid, y = span * bounce(t); break;                    // vertical
    case 2: x = span * bounce(t), y = span * bounce(t); break;       // diagonal
    default:                                                         // circle
      x = mid + mid * std::cos(2 * M_PI * t);
      y = mid + mid * std::sin(2 * M_PI * t);
  }
}

}  // namespace

int64_t SpokenDigits::count() const {
  int64_t n = 0;
  for (const auto& d : recordings) n += static_cast<int64_t>(d.size());
  return n;
}

SpokenDigits load_spoken_digits(const std::string& dir, bool test) {
  namespace fs = std::filesystem;
  check(fs::is_directory(dir), "[moving_av] ", dir, ": expected the FSDD recordings folder ({digit}_{speaker}_{take}.wav)");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".wav") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  SpokenDigits s;
  for (const std::string& path : files) {
    const std::string name = fs::path(path).stem().string();
    const size_t a = name.find('_'), b = name.rfind('_');
    const auto all_digits = [](const std::string& s) {
      return !s.empty() && s.size() <= 6 && std::all_of(s.begin(), s.end(), [](unsigned char ch) { return std::isdigit(ch); });
    };
    if (a != 1 || b == a || b == std::string::npos || !all_digits(name.substr(0, 1)) || !all_digits(name.substr(b + 1)))
      throw_error("[moving_av] ", path, ": expected a file name {digit}_{speaker}_{take}.wav (FSDD)");
    const long digit = name[0] - '0', take = std::stol(name.substr(b + 1));
    if ((take <= 4) != test) continue;
    Wav w = read_wav(path);
    check(w.sample_rate == kSpokenDigitRate, "[moving_av] ", path, ": expected ", kSpokenDigitRate, " Hz (FSDD), got ", w.sample_rate);
    check(!w.samples.empty(), "[moving_av] ", path, ": no samples");
    float peak = 0;
    for (float v : w.samples) peak = std::max(peak, std::fabs(v));
    if (peak > 0)
      for (float& v : w.samples) v /= peak;
    s.recordings[static_cast<size_t>(digit)].push_back(std::move(w.samples));
  }
  for (int d = 0; d < 10; ++d)
    check(!s.recordings[static_cast<size_t>(d)].empty(), "[moving_av] ", dir, ": no ", test ? "test (takes 0-4)" : "training",
          " recording of the digit ", d);
  return s;
}

void check_moving_av_options(const MovingAvOptions& o) {
  check(o.frames >= 1 && o.size >= 4 && o.item_size >= 2 && o.item_size <= o.size && o.samples_per_frame >= 1,
        "[moving_av] expected frames >= 1, size >= 4, 2 <= item_size <= size and samples_per_frame >= 1, got ", o.frames,
        ", ", o.size, ", ", o.item_size, ", ", o.samples_per_frame);
}

AvClip make_av_clip(const float* item, int32_t label, const std::vector<float>& speech, int motion, double phase,
                    const MovingAvOptions& o) {
  check_moving_av_options(o);
  check(motion >= 0 && motion < kMotionClasses, "[moving_av] motion class must be in [0, ", kMotionClasses, "), got ", motion);
  const int64_t t = o.frames, s = o.size, n = o.item_size;
  const std::vector<float> small = shrink_item(item, n);
  AvClip c;
  c.label = label;
  c.motion = motion;
  c.video = Tensor::zeros({t, 3, s, s});
  for (int64_t f = 0; f < t; ++f) {
    double x, y;
    path(motion, phase + static_cast<double>(f) / t, static_cast<double>(s - n), x, y);
    const int64_t ox = std::llround(x), oy = std::llround(y);
    float* frame = c.video.f32() + f * 3 * s * s;
    for (int64_t yy = 0; yy < n; ++yy)
      for (int64_t xx = 0; xx < n; ++xx) {
        const int64_t py = oy + yy, px = ox + xx;
        if (py < 0 || py >= s || px < 0 || px >= s) continue;
        for (int ch = 0; ch < 3; ++ch) frame[(ch * s + py) * s + px] = small[static_cast<size_t>(yy * n + xx)];
      }
  }
  const int64_t len = t * o.samples_per_frame, m = static_cast<int64_t>(speech.size());
  c.audio = Tensor::zeros({len, 1});
  // centred: the recording's middle at the window's middle
  const int64_t shift = (len - m) / 2;  // >= 0: zero padding before; < 0: cropping
  for (int64_t i = 0; i < len; ++i) {
    const int64_t j = i - shift;
    if (j >= 0 && j < m) c.audio.f32()[i] = speech[static_cast<size_t>(j)];
  }
  return c;
}

AvClip draw_av_clip(const Dataset& images, const SpokenDigits& speech, const MovingAvOptions& o, Rng& rng) {
  check(images.size() > 0 && images.example_shape() == (Shape{kItemSide, kItemSide}), "[moving_av] expected 28 x 28 "
        "Fashion-MNIST images, got ", images.size(), " of ", shape_str(images.example_shape()));
  const int64_t i = rng.below(static_cast<uint32_t>(images.size()));
  const int32_t label = images.labels.data<int32_t>()[i];
  check(label >= 0 && label < 10, "[moving_av] image ", i, " has the label ", label, ", expected 0-9");
  const auto& recs = speech.recordings[static_cast<size_t>(label)];
  check(!recs.empty(), "[moving_av] no recording of the digit ", label);
  const auto& rec = recs[rng.below(static_cast<uint32_t>(recs.size()))];
  const int motion = static_cast<int>(rng.below(kMotionClasses));
  const double phase = rng.uniform();
  return make_av_clip(images.inputs.f32() + i * kItemSide * kItemSide, label, rec, motion, phase, o);
}

double psnr(double mse, double peak) {
  return mse > 0 ? 10.0 * std::log10(peak * peak / mse) : INFINITY;
}

}  // namespace perceiver::data
