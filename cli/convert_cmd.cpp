// `perceiver convert IN.bin OUT.safetensors`: a PyTorch state dict (zip + pickle) to safetensors,
// read with the restricted unpickler (nothing in the file is ever executed), written atomically.
#include <cstdio>

#include "commands.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/io/torch_pickle.h"

namespace perceiver::cli {

Runner add_convert_command(CLI::App& sub) {
  struct Args {
    std::string in, out;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("input", a->in, "pytorch_model.bin (PyTorch >= 1.6 zip format)")->required()->check(CLI::ExistingFile);
  sub.add_option("output", a->out, "output .safetensors file")->required();
  return [a]() {
    io::convert_to_safetensors(a->in, a->out);
    const io::SafetensorsHeader h = io::read_safetensors_header(a->out);
    std::printf("wrote %s: %zu tensors\n", a->out.c_str(), h.entries.size());
    return 0;
  };
}

}  // namespace perceiver::cli
