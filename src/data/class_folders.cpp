// Class-folder listing and the seeded held-out split (see class_folders.h).
#include "perceiver/data/class_folders.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "perceiver/core/error.h"

namespace perceiver::data {
namespace {

namespace fs = std::filesystem;

struct File {
  std::string path, label;
};

bool accepted(const fs::path& p, const std::vector<std::string>& extensions) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::find(extensions.begin(), extensions.end(), ext) != extensions.end();
}

std::string extension_list(const std::vector<std::string>& extensions) {
  std::string s;
  for (const std::string& e : extensions) s += (s.empty() ? "" : "/") + e;
  return s;
}

// root/<class>/<file>: every accepted file under each class folder (recursively).
std::vector<File> list_classes(const fs::path& root, const ClassFolderOptions& o) {
  std::vector<File> files;
  for (const auto& cls : fs::directory_iterator(root)) {
    const std::string label = cls.path().filename().string();
    if (label.empty() || label[0] == '.') continue;
    if (!cls.is_directory())
      throw_error("[", o.who, "] ", cls.path().string(), ": expected only class folders in ", root.string());
    for (const auto& e : fs::recursive_directory_iterator(cls.path())) {
      if (!e.is_regular_file() || e.path().filename().string()[0] == '.') continue;
      if (!accepted(e.path(), o.extensions))
        throw_error("[", o.who, "] ", e.path().string(), ": not a ", extension_list(o.extensions),
                    " file (convert or remove it)");
      files.push_back({e.path().string(), label});
    }
  }
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.path < b.path; });
  return files;
}

}  // namespace

uint64_t file_name_hash(const std::string& path, uint64_t seed) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (char c : fs::path(path).filename().string()) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return h;
}

bool held_out_file(const std::string& path, double test_fraction, uint64_t seed) {
  return static_cast<double>(file_name_hash(path, seed) % 1000000) < test_fraction * 1e6;
}

ClassFolderFiles list_class_folders(const ClassFolderOptions& o, bool train) {
  if (!fs::is_directory(o.dir)) throw_error("[", o.who, "] ", o.dir, ": not a directory");
  const fs::path root(o.dir);
  fs::path test_dir;
  for (const char* name : {"val", "test"})
    if (fs::is_directory(root / name)) test_dir = root / name;
  const bool split_dirs = fs::is_directory(root / "train") && !test_dir.empty();
  std::vector<File> train_files, test_files;
  if (split_dirs) {
    train_files = list_classes(root / "train", o);
    test_files = list_classes(test_dir, o);
  } else {
    for (File& f : list_classes(root, o)) (held_out_file(f.path, o.test_fraction, o.seed) ? test_files : train_files).push_back(f);
  }
  ClassFolderFiles out;
  for (const File& f : train_files) out.class_names.push_back(f.label);
  std::sort(out.class_names.begin(), out.class_names.end());
  out.class_names.erase(std::unique(out.class_names.begin(), out.class_names.end()), out.class_names.end());
  for (const File& f : test_files)
    if (!std::binary_search(out.class_names.begin(), out.class_names.end(), f.label))
      throw_error("[", o.who, "] ", f.path, ": class \"", f.label, "\" has no training ", o.noun);
  const std::vector<File>& files = train ? train_files : test_files;
  if (files.empty()) throw_error("[", o.who, "] ", o.dir, ": the ", train ? "training" : "test", " set has no ", o.noun);
  for (const File& f : files) {
    out.paths.push_back(f.path);
    out.labels.push_back(static_cast<int32_t>(
        std::lower_bound(out.class_names.begin(), out.class_names.end(), f.label) - out.class_names.begin()));
  }
  return out;
}

}  // namespace perceiver::data
