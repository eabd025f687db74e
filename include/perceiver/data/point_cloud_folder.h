// Point-cloud classification sets from class folders (data/class_folders.h): root/<class>/**
// holding .off, .ply, .xyz or .wrl files (or train/ + val/ or test/ subfolders, or a seeded
// held-out share). Each example is num_points points (num_points, 3): sampled from the mesh
// surface by area (or drawn from a point set's points; data/point_cloud.h) with a seed from the
// file's name, so a file always gives the same points, then centred and scaled into the unit
// sphere. Errors read "[point_cloud_folder] <path>: ..." or the reader's "[point_cloud] <file>: ...".
#pragma once

#include <cstdint>
#include <string>

#include "perceiver/data/dataset.h"

namespace perceiver::data {

struct PointCloudFolderOptions {
  std::string dir;
  int64_t num_points = 1024;
  double test_fraction = 0.1;
  uint64_t seed = 0;  // the split's and the sampling's
  int64_t max_file_bytes = int64_t(1) << 30;
};

// The files listed now, each read and sampled when an example is asked for (streamed).
ExampleSource point_cloud_folder_source(const PointCloudFolderOptions& options, bool train);

// The points of one file as the source gives them: num_points x 3, in the unit sphere.
std::vector<float> point_cloud_example(const std::string& path, int64_t num_points, uint64_t seed,
                                       int64_t max_file_bytes = int64_t(1) << 30);

}  // namespace perceiver::data
