// `perceiver flow-synth --assets DIR --out DIR --count N`: writes FlyingChairs-style synthetic
// pairs (data/flow_synth.h) as NAME_img1.png, NAME_img2.png, NAME_flow.flo, plus NAME_occ.png
// (white where the frame-1 pixel is hidden or leaves the frame in frame 2). Pair i comes from its
// own generator (seed, i): the held-out pairs of a flow_synth run with split_seed = seed and the
// same frame size and motion options (training pairs come from each step's generator).
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "perceiver/core/error.h"
#include "perceiver/data/flow_synth.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/io/atomic_file.h"

namespace perceiver::cli {

Runner add_flow_synth_command(CLI::App& sub) {
  struct Args {
    std::string assets, out;
    int64_t count = 16, height = 64, width = 64, max_assets = 0;
    uint64_t seed = 0;
    int min_sprites = 3, max_sprites = 8;
    data::FlowSynthOptions o;  // the motion ranges and texture (defaults of data/flow_synth.h)
    CommonOptions common;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--assets", a->assets, "folder with backgrounds/ and sprites/ (scripts/fetch_flow_data.sh)")
      ->required()->check(CLI::ExistingDirectory);
  sub.add_option("--out", a->out, "output folder (created)")->required();
  sub.add_option("--count", a->count, "pairs to write (default 16)")->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  sub.add_option("--height", a->height, "frame height (default 64)")->check(CLI::Range(int64_t{1}, int64_t{8192}));
  sub.add_option("--width", a->width, "frame width (default 64)")->check(CLI::Range(int64_t{1}, int64_t{8192}));
  sub.add_option("--seed", a->seed, "pair i is drawn from generator (seed, i) (default 0)");
  sub.add_option("--min-sprites", a->min_sprites, "sprites per pair at least (default 3)")->check(CLI::Range(0, 64));
  sub.add_option("--max-sprites", a->max_sprites, "sprites per pair at most (default 8)")->check(CLI::Range(0, 64));
  sub.add_option("--sprite-translation", a->o.sprite_translation, "sprite motion per axis at most, pixels (default 8)")
      ->check(finite_range(0, 1000));
  sub.add_option("--background-translation", a->o.background_translation, "background motion per axis at most (default 4)")
      ->check(finite_range(0, 1000));
  sub.add_option("--sprite-rotation", a->o.sprite_rotation, "sprite rotation at most, radians (default 0.3)")
      ->check(finite_range(0, 3.15));
  sub.add_option("--background-rotation", a->o.background_rotation, "background rotation at most, radians (default 0.05)")
      ->check(finite_range(0, 3.15));
  sub.add_option("--sprite-scale", a->o.sprite_scale, "sprite relative scale change at most (default 0.1)")
      ->check(finite_range(0, 0.49));
  sub.add_option("--background-scale", a->o.background_scale, "background relative scale change at most (default 0.05)")
      ->check(finite_range(0, 0.49));
  sub.add_option("--texture", a->o.texture, "blend weight of a procedural texture moving with every layer (default 0)")
      ->check(finite_range(0, 1));
  sub.add_option("--texture-cell", a->o.texture_cell, "finest texture cell, pixels (default 1.5)")->check(finite_range(0.25, 64));
  sub.add_option("--max-assets", a->max_assets, "read at most this many sprites (default all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  add_common_options(sub, a->common);
  return [a]() {
    apply_common_options(a->common);
    data::FlowSynthOptions o = a->o;
    o.height = a->height;
    o.width = a->width;
    o.min_sprites = a->min_sprites;
    o.max_sprites = a->max_sprites;
    data::check_flow_synth_options(o);
    data::FlowAssetOptions ao;
    ao.max_sprites = a->max_assets;
    ao.background_side = std::max<int64_t>(192, 2 * std::max(a->height, a->width));
    ao.sprite_side = std::max<int64_t>(32, std::min(a->height, a->width));
    const data::FlowAssets assets = data::load_flow_assets(a->assets, ao);
    std::filesystem::create_directories(a->out);
    char name[32];
    for (int64_t i = 0; i < a->count; ++i) {
      Rng rng(a->seed, 0xf1070000ULL + static_cast<uint64_t>(i));
      const data::FlowPair p = data::synthesize_flow_pair(assets, o, rng);
      std::snprintf(name, sizeof(name), "%05lld", static_cast<long long>(i));
      data::write_flow_pair(a->out, name, p.frame1, p.frame2, p.flow);
      std::vector<uint8_t> occ(p.visible.size());
      for (size_t j = 0; j < occ.size(); ++j) occ[j] = p.visible[j] ? 0 : 255;
      io::write_file_atomic(a->out + "/" + name + "_occ.png",
                            data::encode_png(occ.data(), o.height, o.width, 1, std::string(name) + "_occ.png"));
    }
    std::printf("wrote %lld pairs of %lld x %lld to %s (%zu backgrounds, %zu sprites)\n", (long long)a->count,
                (long long)a->height, (long long)a->width, a->out.c_str(), assets.backgrounds.size(), assets.sprites.size());
    return 0;
  };
}

}  // namespace perceiver::cli
