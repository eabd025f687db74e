// Fashion-MNIST (Xiao et al. 2017) from IDX files: {train,t10k}-{images-idx3,labels-idx1}-ubyte,
// raw or with a .gz suffix. Debian's dataset-fashion-mnist package installs them in
// kFashionMnistDefaultDir. Images become float32 (n, 28, 28) in [0, 1], labels int32 in [0, 10).
#pragma once

#include <string>
#include <vector>

#include "perceiver/data/dataset.h"

namespace perceiver::data {

inline constexpr const char* kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistClasses = 10;


// The ten class names, index = label.
const std::vector<std::string>& fashion_mnist_class_names();

// Loads the training (60000) or test (10000) split from `dir`. Errors name the file: missing
// files, corrupt IDX data, image/label count mismatch, labels outside [0, 10).
Dataset load_fashion_mnist(const std::string& dir = kFashionMnistDefaultDir, bool train = true);

}  // namespace perceiver::data
