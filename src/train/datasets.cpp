// Run-config data sources (see datasets.h).
#include "perceiver/train/datasets.h"

#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/data/fashion_mnist.h"
#include "perceiver/data/image_folder.h"
#include "perceiver/data/point_cloud_folder.h"
#include "perceiver/data/wav_folder.h"

namespace perceiver::train {

data::ExampleSource example_source(const RunConfig& config, bool train) {
  const DataConfig& c = config.data;
  data::ExampleSource d;
  if (c.format == "idx") {
    d = data::ExampleSource::from_memory(data::load_fashion_mnist(c.dir, train));
  } else if (c.format == "wav") {
    data::WavFolderOptions o;
    o.dir = c.dir;
    o.pattern = c.pattern;
    o.sample_rate = c.sample_rate;
    o.length = c.length;
    o.frame = c.frame;
    o.hop = c.hop;
    o.peak_normalize = c.peak_normalize;
    o.test_group = c.test_group;
    o.test_index_range = c.test_index_range;
    o.test_fraction = c.test_fraction;
    o.seed = c.split_seed;
    o.speed_factors.assign(c.speed_perturbation.begin(), c.speed_perturbation.end());
    d = data::wav_folder_source(o, train);
  } else if (c.format == "image_folder") {
    // the model's input size: image_size [H, W] of the normalised model config, or the square
    // image_size of a Perceiver IO model's hub config
    nlohmann::json size = config.model.value("image_size", nlohmann::json());
    if (size.is_null() && config.model.contains("hub_config") && config.model.at("hub_config").is_object()) {
      const nlohmann::json& side = config.model.at("hub_config").value("image_size", nlohmann::json());
      if (side.is_number_integer()) size = {side, side};
    }
    if (!size.is_array() || size.size() != 2 || !size[0].is_number_integer() || !size[1].is_number_integer())
      throw_error("[config] data.format \"image_folder\" needs a model with a 2-D image_size (model.image_size, "
                  "or model.hub_config.image_size), got ", size.dump());
    data::ImageFolderOptions o;
    o.dir = c.dir;
    o.height = size[0].get<int64_t>();
    o.width = size[1].get<int64_t>();
    o.channels = static_cast<int>(c.channels);
    o.test_fraction = c.test_fraction;
    o.seed = c.split_seed;
    d = data::image_folder_source(o, train);
  } else if (c.format == "point_cloud") {
    // points per example: the model's image_size [points], each (x, y, z): in_channels 3
    const nlohmann::json size = config.model.value("image_size", nlohmann::json());
    if (!size.is_array() || size.size() != 1 || !size[0].is_number_integer() || config.model.value("in_channels", 0) != 3)
      throw_error("[config] data.format \"point_cloud\" needs a model with image_size [points] and in_channels 3, got "
                  "image_size ", size.dump(), ", in_channels ", config.model.value("in_channels", nlohmann::json()).dump());
    data::PointCloudFolderOptions o;
    o.dir = c.dir;
    o.num_points = size[0].get<int64_t>();
    o.test_fraction = c.test_fraction;
    o.seed = c.split_seed;
    d = data::point_cloud_folder_source(o, train);
  } else {
    throw_error("[config] data.format: expected \"idx\", \"wav\", \"image_folder\" or \"point_cloud\", got \"",
                c.format, "\"");
  }
  d = d.take_first(train ? c.train_limit : c.test_limit);
  if (!d.streamed() || c.streaming) return d;
  // in memory: the limit first, so only the examples used are decoded; a set too large for the
  // machine is refused before any is (an error, not the OOM killer)
  const double bytes = static_cast<double>(d.size()) * static_cast<double>(shape_numel(d.example_shape())) * 4.0;
  check(bytes <= static_cast<double>(machine_memory_bytes()), "[train] ", c.dir, ": the ", train ? "training" : "test",
        " set (", d.size(), " examples of ", shape_str(d.example_shape()), ") needs ", format_bytes(bytes),
        " in memory, more than this machine's ", format_bytes(static_cast<double>(machine_memory_bytes())),
        "; set data.streaming to read the files per batch");
  return data::ExampleSource::from_memory(d.load_all());
}

}  // namespace perceiver::train
