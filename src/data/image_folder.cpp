// ImageFolder-layout classification sets (see image_folder.h).
#include "perceiver/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>

#include "perceiver/core/error.h"
#include "perceiver/data/image.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::data {
namespace {

namespace fs = std::filesystem;

struct File {
  std::string path, label;
};

bool is_image(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// root/<class>/<file>: every image file under each class folder (recursively).
std::vector<File> list_classes(const fs::path& root) {
  std::vector<File> files;
  for (const auto& cls : fs::directory_iterator(root)) {
    const std::string label = cls.path().filename().string();
    if (label.empty() || label[0] == '.') continue;
    if (!cls.is_directory())
      throw_error("[image_folder] ", cls.path().string(), ": expected only class folders in ", root.string());
    for (const auto& e : fs::recursive_directory_iterator(cls.path())) {
      if (!e.is_regular_file() || e.path().filename().string()[0] == '.') continue;
      if (!is_image(e.path()))
        throw_error("[image_folder] ", e.path().string(), ": not a .png/.jpg/.jpeg file (convert or remove it)");
      files.push_back({e.path().string(), label});
    }
  }
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.path < b.path; });
  return files;
}

bool held_out(const std::string& path, const ImageFolderOptions& o) {
  uint64_t h = 1469598103934665603ULL ^ o.seed;  // FNV-1a of the file name
  for (char c : fs::path(path).filename().string()) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return static_cast<double>(h % 1000000) < o.test_fraction * 1e6;
}

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
  if (!fs::is_directory(o.dir)) throw_error("[image_folder] ", o.dir, ": not a directory");
  if (o.channels != 1 && o.channels != 3) throw_error("[image_folder] channels must be 1 or 3, got ", o.channels);
  const fs::path root(o.dir);
  fs::path test_dir;
  for (const char* name : {"val", "test"})
    if (fs::is_directory(root / name)) test_dir = root / name;
  const bool split_dirs = fs::is_directory(root / "train") && !test_dir.empty();
  std::vector<File> train_files, test_files;
  if (split_dirs) {
    train_files = list_classes(root / "train");
    test_files = list_classes(test_dir);
  } else {
    for (File& f : list_classes(root)) (held_out(f.path, o) ? test_files : train_files).push_back(f);
  }
  std::vector<std::string> classes;
  for (const File& f : train_files) classes.push_back(f.label);
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  for (const File& f : test_files)
    if (!std::binary_search(classes.begin(), classes.end(), f.label))
      throw_error("[image_folder] ", f.path, ": class \"", f.label, "\" has no training images");
  const std::vector<File>& files = train ? train_files : test_files;
  if (files.empty()) throw_error("[image_folder] ", o.dir, ": the ", train ? "training" : "test", " set has no images");

  const int64_t n = static_cast<int64_t>(files.size());
  std::vector<int32_t> labels(static_cast<size_t>(n));
  auto paths = std::make_shared<std::vector<std::string>>();
  for (int64_t i = 0; i < n; ++i) {
    const File& f = files[static_cast<size_t>(i)];
    paths->push_back(f.path);
    labels[static_cast<size_t>(i)] =
        static_cast<int32_t>(std::lower_bound(classes.begin(), classes.end(), f.label) - classes.begin());
  }
  const Shape example = o.channels == 1 ? Shape{o.height, o.width} : Shape{o.height, o.width, 3};
  return ExampleSource(example, std::move(labels), classes,
                       [paths, o](int64_t row, float* out) { load_into((*paths)[static_cast<size_t>(row)], o, out); },
                       /*streamed=*/true);
}

Dataset load_image_folder(const ImageFolderOptions& o, bool train) { return image_folder_source(o, train).load_all(); }

}  // namespace perceiver::data
