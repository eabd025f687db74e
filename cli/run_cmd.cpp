// `perceiver run --model DIR --inputs IN.safetensors --outputs OUT.safetensors`: runs a Hugging
// Face Perceiver IO model folder on named inputs ("inputs", "attention_mask", "inputs.<m>",
// "subsampled_output_points[.<m>]") and writes the logits ("logits" / "logits.<m>") and the
// intermediate tensors under the fixtures' names (encoder_input, latents_*, decoder_query,
// decoder_output). Any model folder works the same way (models::Model): a ViT takes
// "pixel_values" (B, C, H, W) of any H x W (the position table is resampled bicubically when the
// patch grid differs) and writes "logits" plus patch_embeddings, embeddings,
// attention_block_output_each_layer, hidden_states_after_each_layer and final_layernorm_output.
#include <cstdio>

#include "commands.h"
#include "finite_check.h"
#include "hf_task_util.h"
#include "perceiver/autograd/grad_mode.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/io/model_folder.h"

namespace perceiver::cli {

Runner add_run_command(CLI::App& sub) {
  struct Args {
    std::string model, inputs, outputs;
    bool logits_only = false;
    int64_t chunk_size = 0;
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--model", a->model, "HF model folder (config.json + model.safetensors)")->required()->check(CLI::ExistingDirectory);
  sub.add_option("--inputs", a->inputs, "input tensors (.safetensors)")->required()->check(CLI::ExistingFile);
  sub.add_option("--outputs", a->outputs, "where to write the output tensors (.safetensors)")->required();
  sub.add_flag("--logits-only", a->logits_only, "write only the logits, not the intermediate tensors");
  sub.add_option("--chunk-size", a->chunk_size, "decode all outputs in chunks of this many queries (implies --logits-only)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() {
    namespace pio = models::perceiver_io;
    apply_common_options(a->common);
    const bool allow = a->common.allow_nonfinite;
    std::unique_ptr<models::Model> model = io::load_model_folder(a->model);
    check_finite_parameters(*model, "run", a->model, allow);
    apply_precision(*model, a->common);
    const models::TensorMap inputs = io::load_safetensors(a->inputs).tensors;
    check_finite(inputs, "run", a->inputs, "input", allow);
    autograd::NoGradGuard no_grad;
    models::TensorMap out;
    if (a->chunk_size > 0) {
      const auto* io_model = dynamic_cast<const pio::PerceiverIO*>(model.get());
      check(io_model != nullptr, "[run] ", a->model, ": --chunk-size applies to Perceiver IO decoders, not to a ",
            model->architecture());
      check(io_model->output_points_from_inputs(inputs).empty(), "[run] --chunk-size decodes every output; "
            "the inputs also select subsampled_output_points");
      out = io_model->decode_chunked(io_model->encode(inputs), a->chunk_size);
    } else {
      models::TensorMap trace;
      out = model->forward(inputs, a->logits_only ? nullptr : &trace);
      if (!a->logits_only) {
        trace.insert(out.begin(), out.end());  // the outputs are part of the trace
        out = std::move(trace);
      }
    }
    check_finite(out, "run", a->outputs, "output", allow);  // nothing is written then
    std::vector<std::pair<std::string, Tensor>> tensors(out.begin(), out.end());
    io::save_safetensors(a->outputs, tensors, {{"format", "pt"}});
    for (const auto& [name, t] : tensors) std::printf("%s %s\n", name.c_str(), shape_str(t.shape()).c_str());
    return 0;
  };
}

}  // namespace perceiver::cli
