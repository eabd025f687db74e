// Classification sets laid out in class folders (torchvision's ImageFolder layout), whatever the
// files hold (images, meshes): root/<class>/** , or root/train/<class>/** with root/val/<class>/**
// (or test/) as the test set; without those, a seeded share of each class's files (by a hash of
// the file name) is held out. Hidden files are skipped; a file of another kind is an error naming
// it. Errors read "[<who>] <path>: ...".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace perceiver::data {

struct ClassFolderOptions {
  std::string dir;
  double test_fraction = 0.1;  // without train/ + val/ (or test/) subfolders
  uint64_t seed = 0;
  std::vector<std::string> extensions;  // accepted, lower case with the dot (".png"); any case matches
  std::string who = "class_folders";    // the error prefix: "image_folder", "point_cloud_folder"
  std::string noun = "files";           // in messages: "the training set has no images"
};

struct ClassFolderFiles {
  std::vector<std::string> paths;        // sorted
  std::vector<int32_t> labels;           // indices into class_names
  std::vector<std::string> class_names;  // sorted; the training files' classes
};

// The training or the test part. Errors: no such directory, a plain file among the class folders,
// a file of another kind, a test class without training files, an empty part.
ClassFolderFiles list_class_folders(const ClassFolderOptions& options, bool train);

// FNV-1a of the file's name (not its folder) from a seeded start: independent of the file order.
uint64_t file_name_hash(const std::string& path, uint64_t seed);
// The file's share of the split: true when file_name_hash falls in the test fraction.
bool held_out_file(const std::string& path, double test_fraction, uint64_t seed);

}  // namespace perceiver::data
