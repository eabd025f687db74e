// Perceiver configuration: JSON parsing with validation, and back to JSON (for checkpoints).
#include "perceiver/models/perceiver_config.h"

#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/models/perceiver_io/position_encoding.h"

namespace perceiver::models {

int64_t PerceiverConfig::num_inputs() const {
  int64_t m = 1;
  for (int64_t d : image_size) m *= d;
  return m;
}

int64_t PerceiverConfig::element_channels() const { return in_channels * input_patch_size * input_patch_size; }

int64_t PerceiverConfig::feature_width() const { return input_projection > 0 ? input_projection : element_channels(); }

int64_t PerceiverConfig::input_width() const { return feature_width() + fourier_spec().output_size(); }

perceiver_io::FourierSpec PerceiverConfig::fourier_spec() const {
  perceiver_io::FourierSpec s;
  s.num_bands = num_fourier_bands;
  s.max_resolution = max_resolution;
  s.concat_pos = concat_pos;
  s.sine_only = sine_only;
  return s;
}

int PerceiverConfig::num_weight_sets() const {
  return share_weights ? std::min(num_cross_attends, 2) : num_cross_attends;
}

PerceiverConfig parse_perceiver_config(const nlohmann::json& j, const std::string& path) {
  JsonObject o(j, path);
  PerceiverConfig c;
  const std::string type = o.get_string("type", "perceiver", {"perceiver"});
  (void)type;
  c.image_size = o.get_int_list("image_size", c.image_size, 1, 4096, 1, 3);
  c.in_channels = o.get_int("in_channels", c.in_channels, 1, 4096);
  c.input_patch_size = o.get_int("input_patch_size", c.input_patch_size, 1, 63);
  c.input_projection = o.get_int("input_projection", c.input_projection, 0, 1 << 16);
  c.input_projection_type = o.get_string("input_projection_type", c.input_projection_type, {"gelu", "log_power"});
  c.input_projection_init = o.get_string("input_projection_init", c.input_projection_init, {"random", "mel"});
  c.sample_rate = o.get_float("sample_rate", static_cast<float>(c.sample_rate), 1000.0, 1e7);
  c.input_projection_trainable = o.get_bool("input_projection_trainable", c.input_projection_trainable);
  c.input_mean_normalization = o.get_bool("input_mean_normalization", c.input_mean_normalization);
  c.input_variance_normalization = o.get_bool("input_variance_normalization", c.input_variance_normalization);
  c.channel_masks = static_cast<int>(o.get_int("channel_masks", c.channel_masks, 0, 64));
  c.channel_mask_width = o.get_int("channel_mask_width", c.channel_mask_width, 0, 1 << 16);
  c.element_masks = static_cast<int>(o.get_int("element_masks", c.element_masks, 0, 64));
  c.element_mask_width = o.get_int("element_mask_width", c.element_mask_width, 0, 1 << 20);
  c.input_positions = o.get_string("input_positions", c.input_positions, {"grid", "coordinates"});
  c.num_fourier_bands = o.get_int("num_fourier_bands", c.num_fourier_bands, 1, 1024);
  c.max_resolution = o.get_int_list("max_resolution", c.image_size, 1, 65536, 1, 3);
  c.concat_pos = o.get_bool("concat_pos", c.concat_pos);
  c.sine_only = o.get_bool("sine_only", c.sine_only);
  c.num_latents = o.get_int("num_latents", c.num_latents, 1, 1 << 20);
  c.d_latents = o.get_int("d_latents", c.d_latents, 1, 1 << 16);
  c.qk_channels = o.get_int("qk_channels", c.qk_channels, 0, 1 << 16);
  c.v_channels = o.get_int("v_channels", c.v_channels, 0, 1 << 16);
  c.cross_attention_heads = static_cast<int>(o.get_int("cross_attention_heads", c.cross_attention_heads, 1, 1024));
  c.self_attention_heads = static_cast<int>(o.get_int("self_attention_heads", c.self_attention_heads, 1, 1024));
  c.cross_attention_widening_factor = static_cast<int>(
      o.get_int("cross_attention_widening_factor", c.cross_attention_widening_factor, 1, 64));
  c.self_attention_widening_factor = static_cast<int>(
      o.get_int("self_attention_widening_factor", c.self_attention_widening_factor, 1, 64));
  c.use_query_residual = o.get_bool("use_query_residual", c.use_query_residual);
  c.cross_attention_shape_for_attention =
      o.get_string("cross_attention_shape_for_attention", c.cross_attention_shape_for_attention, {"kv", "q"});
  c.num_cross_attends = static_cast<int>(o.get_int("num_cross_attends", c.num_cross_attends, 1, 64));
  c.self_attends_per_block = static_cast<int>(o.get_int("self_attends_per_block", c.self_attends_per_block, 0, 256));
  c.num_blocks = static_cast<int>(o.get_int("num_blocks", c.num_blocks, 1, 256));
  c.share_weights = o.get_bool("share_weights", c.share_weights);
  c.head = o.get_string("head", c.head, {"average", "query"});
  c.head_layernorm = o.get_bool("head_layernorm", c.head_layernorm);
  c.decoder_heads = static_cast<int>(o.get_int("decoder_heads", c.decoder_heads, 1, 1024));
  c.num_classes = o.get_int("num_classes", c.num_classes, 1, 1 << 20);
  c.dropout = o.get_float("dropout", c.dropout, 0.0, 0.99);
  c.drop_path = o.get_float("drop_path", c.drop_path, 0.0, 0.99);
  c.init = o.get_string("init", c.init, {"lecun", "normal"});
  c.init_std = o.get_float("init_std", c.init_std, 1e-6, 10.0);
  o.finish();

  check(c.input_patch_size % 2 == 1 && (c.input_patch_size == 1 || c.image_size.size() == 2), "[config] ", path,
        ".input_patch_size: expected an odd size (a neighbourhood centred on its pixel), on 2-D images only; got ",
        c.input_patch_size, " with image_size of ", c.image_size.size(), " axes");
  check(c.drop_path == 0.0f || c.self_attends_per_block > 0, "[config] ", path, ".drop_path = ", c.drop_path,
        " needs latent self-attends to drop (self_attends_per_block is 0)");
  check(c.input_projection_trainable || c.input_projection > 0, "[config] ", path, ".input_projection_trainable false "
        "fixes the input projection, but there is none (input_projection is 0)");
  check(c.input_projection_init == "random" || (c.input_projection_type == "log_power" && c.input_projection > 0),
        "[config] ", path, ".input_projection_init \"mel\" needs input_projection > 0 and input_projection_type "
        "\"log_power\" (a filterbank of cos/sin pairs over the frame)");
  check(!c.input_mean_normalization || c.num_inputs() > 1, "[config] ", path, ".input_mean_normalization "
        "needs more than one input element (image_size), got 1: every feature would become 0");
  check(!c.input_variance_normalization || c.input_mean_normalization, "[config] ", path,
        ".input_variance_normalization needs input_mean_normalization: true (the variance is taken about the mean)");
  check(c.channel_mask_width <= c.feature_width(), "[config] ", path, ".channel_mask_width = ", c.channel_mask_width,
        " exceeds the feature width (input_projection or in_channels) = ", c.feature_width());
  check(c.element_mask_width <= c.num_inputs(), "[config] ", path, ".element_mask_width = ", c.element_mask_width,
        " exceeds the number of input elements (product of image_size) = ", c.num_inputs());
  check((c.channel_masks > 0) == (c.channel_mask_width > 0) && (c.element_masks > 0) == (c.element_mask_width > 0),
        "[config] ", path, ": masking needs both a count and a width (channel_masks with channel_mask_width, "
        "element_masks with element_mask_width), got channel_masks ", c.channel_masks, ", channel_mask_width ",
        c.channel_mask_width, ", element_masks ", c.element_masks, ", element_mask_width ", c.element_mask_width);
  if (c.input_positions == "grid") {
    check(c.max_resolution.size() == c.image_size.size(), "[config] ", path, ".max_resolution: expected ",
          c.image_size.size(), " entries (one per image_size axis), got ", c.max_resolution.size());
  } else {
    // coordinates: one max_resolution per coordinate, read from the first channels of each element
    const int64_t d = static_cast<int64_t>(c.max_resolution.size());
    check(c.image_size.size() == 1 && c.in_channels >= d && c.input_patch_size == 1, "[config] ", path,
          ".input_positions \"coordinates\" takes a set of elements (image_size [points]) whose first ",
          "len(max_resolution) = ", d, " channels are their position: expected image_size of 1 axis, in_channels >= ",
          d, " and no input_patch_size; got image_size of ", c.image_size.size(), " axes, in_channels ", c.in_channels,
          ", input_patch_size ", c.input_patch_size);
  }
  // Width rules are checked here so a bad config fails before any allocation.
  auto divisible = [&](int64_t width, int heads, const char* what, const char* heads_key) {
    check(width % heads == 0, "[config] ", path, ".", what, " = ", width, " must be divisible by ",
          heads_key, " = ", heads);
  };
  const int64_t cross_qk = c.qk_channels ? c.qk_channels
                           : (c.cross_attention_shape_for_attention == "kv" ? c.input_width() : c.d_latents);
  const int64_t cross_v = c.v_channels ? c.v_channels : cross_qk;
  divisible(cross_qk, c.cross_attention_heads, c.qk_channels ? "qk_channels" : "cross-attention qk width (input width)", "cross_attention_heads");
  divisible(cross_v, c.cross_attention_heads, c.v_channels ? "v_channels" : "cross-attention v width", "cross_attention_heads");
  if (c.self_attends_per_block > 0) {
    const int64_t self_qk = c.qk_channels ? c.qk_channels : c.d_latents;
    const int64_t self_v = c.v_channels ? c.v_channels : self_qk;
    divisible(self_qk, c.self_attention_heads, c.qk_channels ? "qk_channels" : "d_latents", "self_attention_heads");
    check(self_v == c.d_latents, "[config] ", path, ": self-attention value width (v_channels, or qk_channels "
          "when v_channels is 0) must equal d_latents = ", c.d_latents, " for the residual, got ", self_v);
    divisible(self_v, c.self_attention_heads, "v_channels", "self_attention_heads");
  }
  if (c.head == "query") divisible(c.d_latents, c.decoder_heads, "d_latents", "decoder_heads");
  return c;
}

nlohmann::json PerceiverConfig::to_json() const {
  return {{"type", "perceiver"},
          {"image_size", image_size},
          {"in_channels", in_channels},
          {"input_patch_size", input_patch_size},
          {"input_projection", input_projection},
          {"input_projection_type", input_projection_type},
          {"input_projection_init", input_projection_init},
          {"sample_rate", sample_rate},
          {"input_projection_trainable", input_projection_trainable},
          {"input_mean_normalization", input_mean_normalization},
          {"input_variance_normalization", input_variance_normalization},
          {"channel_masks", channel_masks},
          {"channel_mask_width", channel_mask_width},
          {"element_masks", element_masks},
          {"element_mask_width", element_mask_width},
          {"input_positions", input_positions},
          {"num_fourier_bands", num_fourier_bands},
          {"max_resolution", max_resolution},
          {"concat_pos", concat_pos},
          {"sine_only", sine_only},
          {"num_latents", num_latents},
          {"d_latents", d_latents},
          {"qk_channels", qk_channels},
          {"v_channels", v_channels},
          {"cross_attention_heads", cross_attention_heads},
          {"self_attention_heads", self_attention_heads},
          {"cross_attention_widening_factor", cross_attention_widening_factor},
          {"self_attention_widening_factor", self_attention_widening_factor},
          {"use_query_residual", use_query_residual},
          {"cross_attention_shape_for_attention", cross_attention_shape_for_attention},
          {"num_cross_attends", num_cross_attends},
          {"self_attends_per_block", self_attends_per_block},
          {"num_blocks", num_blocks},
          {"share_weights", share_weights},
          {"head", head},
          {"head_layernorm", head_layernorm},
          {"decoder_heads", decoder_heads},
          {"num_classes", num_classes},
          {"dropout", dropout},
          {"drop_path", drop_path},
          {"init", init},
          {"init_std", init_std}};
}

}  // namespace perceiver::models
