// Point-cloud classification sets from class folders (see point_cloud_folder.h).
#include "perceiver/data/point_cloud_folder.h"

#include <algorithm>
#include <memory>

#include "perceiver/core/error.h"
#include "perceiver/data/class_folders.h"
#include "perceiver/data/point_cloud.h"

namespace perceiver::data {

std::vector<float> point_cloud_example(const std::string& path, int64_t num_points, uint64_t seed,
                                       int64_t max_file_bytes) {
  Rng rng(file_name_hash(path, seed), 0x9e3779b97f4a7c15ULL);  // the file's own sample stream
  std::vector<float> xyz = sample_points(read_mesh(path, max_file_bytes), num_points, rng, path);
  normalize_to_unit_sphere(xyz);
  return xyz;
}

ExampleSource point_cloud_folder_source(const PointCloudFolderOptions& o, bool train) {
  check(o.num_points >= 1 && o.num_points <= kMaxMeshElements, "[point_cloud_folder] num_points must be in [1, ",
        kMaxMeshElements, "], got ", o.num_points);
  ClassFolderOptions co;
  co.dir = o.dir;
  co.test_fraction = o.test_fraction;
  co.seed = o.seed;
  co.extensions = {".off", ".ply", ".xyz", ".wrl"};
  co.who = "point_cloud_folder";
  co.noun = "point clouds";
  ClassFolderFiles files = list_class_folders(co, train);
  auto paths = std::make_shared<std::vector<std::string>>(std::move(files.paths));
  return ExampleSource({o.num_points, 3}, std::move(files.labels), std::move(files.class_names),
                       [paths, o](int64_t row, float* out) {
                         const std::vector<float> xyz = point_cloud_example((*paths)[static_cast<size_t>(row)],
                                                                            o.num_points, o.seed, o.max_file_bytes);
                         std::copy(xyz.begin(), xyz.end(), out);
                       },
                       /*streamed=*/true);
}

}  // namespace perceiver::data
