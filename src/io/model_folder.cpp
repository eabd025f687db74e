// Reading a Hugging Face Perceiver IO model folder (io/model_folder.h): config.json through the
// models' HF config parser, the weights file through io/state_dict, strict in-place loading.
#include "perceiver/io/model_folder.h"

#include <filesystem>

#include "perceiver/core/allocator.h"
#include "perceiver/io/state_dict.h"
#include "perceiver/models/perceiver_io/hf_config.h"
#include "perceiver/models/perceiver_io/model_folder.h"
#include "perceiver/nn/layers.h"

namespace perceiver::io {

namespace pio = models::perceiver_io;

std::unique_ptr<models::perceiver_io::PerceiverIO> load_model_folder(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  check(std::filesystem::is_regular_file(config_path), "[model_folder] ", dir, ": expected a config.json in the model folder");
  pio::HfPerceiverConfig config = pio::load_hf_config(config_path);
  const std::string weights = pio::find_weights_file(dir);
  StateDict sd = load_state_dict_file(weights);  // safetensors or torch zip, by content
  std::unique_ptr<pio::PerceiverIO> model;
  {
    nn::SkipInitGuard no_init;  // every parameter is overwritten by the strict load below
    AllocationBudget budget(machine_memory_bytes(), "building the model of " + config_path);
    model = pio::create_perceiver_io(config);
  }
  pio::load_perceiver_state(*model, sd.tensors, weights, /*share_storage=*/true);  // sd is dropped below
  model->train(false);
  return model;
}

}  // namespace perceiver::io
