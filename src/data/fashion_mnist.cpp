// Fashion-MNIST loading: IDX images and labels -> float32 image and int32 label tensors.
#include "perceiver/data/fashion_mnist.h"

#include <sys/stat.h>

#include "perceiver/core/error.h"
#include "perceiver/data/idx.h"

namespace perceiver::data {
namespace {

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// `dir/name`, or `dir/name.gz` when only the compressed file exists.
std::string find_file(const std::string& dir, const std::string& name) {
  const std::string base = (dir.empty() || dir.back() == '/' ? dir : dir + "/") + name;
  if (is_file(base)) return base;
  if (is_file(base + ".gz")) return base + ".gz";
  throw_error("[fashion_mnist] ", base, ": not found (also tried ", base,
              ".gz); install Debian's dataset-fashion-mnist or pass the directory that holds the "
              "IDX files");
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                 "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string image_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  const IdxImages im = read_idx_images(image_path);
  const std::vector<uint8_t> labels = read_idx_labels(label_path);
  check(static_cast<int64_t>(labels.size()) == im.count, "[fashion_mnist] ", label_path, ": has ",
        labels.size(), " labels, but ", image_path, " has ", im.count, " images");
  check(im.rows > 0 && im.cols > 0, "[fashion_mnist] ", image_path, ": images must be non-empty, "
        "got ", im.rows, " x ", im.cols);

  Dataset ds;
  ds.class_names = fashion_mnist_class_names();
  ds.inputs = Tensor::empty({im.count, im.rows, im.cols});
  float* px = ds.inputs.f32();
  const size_t n_px = im.pixels.size();
  for (size_t i = 0; i < n_px; ++i) px[i] = static_cast<float>(im.pixels[i]) / 255.0f;
  ds.labels = Tensor::empty({im.count}, DType::kI32);
  int32_t* lab = ds.labels.data<int32_t>();
  for (size_t i = 0; i < labels.size(); ++i) {
    check(labels[i] < kFashionMnistClasses, "[fashion_mnist] ", label_path, ": label ", i, " is ",
          int(labels[i]), ", expected a class in [0, ", kFashionMnistClasses, ")");
    lab[i] = labels[i];
  }
  return ds;
}

}  // namespace perceiver::data
