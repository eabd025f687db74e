// The data sources of a run config's "data" object, by data.format: "idx" (Fashion-MNIST-style IDX
// files), "wav" (a folder of WAV files, data/wav_folder.h), "image_folder" (PNG/JPEG files in
// class folders, data/image_folder.h, resized to the model's image_size) and "point_cloud"
// (meshes and point sets in class folders, data/point_cloud_folder.h, image_size [points] points
// each); data.train_limit / test_limit applied. The folder formats with data.streaming list the
// files and decode each batch's examples when it is read; otherwise every example is decoded into
// memory up front.
#pragma once

#include "perceiver/data/dataset.h"
#include "perceiver/train/train_config.h"

namespace perceiver::train {

data::ExampleSource example_source(const RunConfig& config, bool train);

}  // namespace perceiver::train
