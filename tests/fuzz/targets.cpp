// Fuzz targets over every loader of untrusted input (see targets.h).
#include "targets.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "io/restricted_unpickler.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/data/idx.h"
#include "perceiver/data/image_codec.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/data/text.h"
#include "perceiver/data/point_cloud.h"
#include "perceiver/data/wav.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/io/torch_pickle.h"
#include "perceiver/models/perceiver_io/hf_config.h"
#include "perceiver/models/vit/vit_config.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/train_config.h"

namespace perceiver::fuzz {
namespace {

// Models built from fuzzed configs may use this much memory; more is refused as an Error, as
// the product refuses what exceeds the machine (AllocationBudget).
constexpr size_t kModelBudget = size_t(256) << 20;
constexpr int64_t kImagePixels = 4'000'000;

// The file-based loaders read a per-process scratch file.
const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = std::getenv("PERCEIVER_FUZZ_TMP");
    return std::string(dir ? dir : "/tmp") + "/perceiver_fuzz_" + std::to_string(::getpid());
  }();
  return path;
}

const std::string& as_file(const uint8_t* data, size_t size) {
  const std::string& path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  if (size && std::fwrite(data, 1, size, f) != size) throw std::runtime_error("cannot write " + path);
  std::fclose(f);
  return path;
}

template <typename Fn>
void expect_error_or_success(Fn&& fn) {
  try {
    fn();
  } catch (const Error&) {
    // a clean rejection
  }
}

void check(bool ok, const std::string& what) {
  if (!ok) throw InvariantViolation(what);
}

// to_json -> text -> parse_json -> parse_run_config gives the same config (a checkpoint's path).
bool reads_back(const train::RunConfig& rc) {
  try {
    return train::parse_run_config(parse_json(rc.to_json().dump(), "re-read")).to_json() == rc.to_json();
  } catch (const Error&) {
    return false;
  }
}

void safetensors(const uint8_t* d, size_t n) {
  expect_error_or_success([&] { io::load_safetensors(as_file(d, n)); });
}

void checkpoint(const uint8_t* d, size_t n) {
  expect_error_or_success([&] {
    const std::string& path = as_file(d, n);
    train::Checkpoint ck = train::read_checkpoint(path);
    // what a checkpoint stores must read back (eval, predict and --resume depend on it)
    check(reads_back(ck.config), "checkpoint config does not round-trip");
    AllocationBudget budget(kModelBudget, "fuzz model");
    train::model_from_checkpoint(ck, path);
  });
}

void torch_zip(const uint8_t* d, size_t n) {
  expect_error_or_success([&] { io::load_pytorch_bin(as_file(d, n)); });
}

void pickle(const uint8_t* d, size_t n) {
  expect_error_or_success([&] { io::pickle::unpickle_state_dict(std::string(reinterpret_cast<const char*>(d), n), "fuzz"); });
}

void run_config(const uint8_t* d, size_t n) {
  expect_error_or_success([&] {
    const train::RunConfig rc = train::parse_run_config(parse_json({reinterpret_cast<const char*>(d), n}, "fuzz"));
    // a run must always reload its own config (it is stored in every checkpoint)
    check(reads_back(rc), "run config does not read back unchanged");
  });
}

void hub_config(const uint8_t* d, size_t n) {
  nlohmann::json j;
  try {
    j = parse_json({reinterpret_cast<const char*>(d), n}, "fuzz", "hf_config");
  } catch (const Error&) {
    return;
  }
  expect_error_or_success([&] {
    namespace pio = models::perceiver_io;
    const pio::HfPerceiverConfig c = pio::parse_hf_config(j, "fuzz");
    bool same = false;
    try {  // what we export as config.json must load again, unchanged
      same = pio::to_hub_json(pio::parse_hf_config(pio::to_hub_json(c), "re-read")) == pio::to_hub_json(c);
    } catch (const Error&) {
    }
    check(same, "hub config does not read back unchanged");
  });
  expect_error_or_success([&] { models::parse_hf_vit_config(j, "fuzz"); });
  expect_error_or_success([&] { data::parse_preprocessor_config(j, "fuzz", data::perceiver_processor_config()); });
}

void idx(const uint8_t* d, size_t n) {
  expect_error_or_success([&] { data::read_idx(as_file(d, n)); });
}

void image(const uint8_t* d, size_t n) {
  const std::string_view bytes(reinterpret_cast<const char*>(d), n);
  expect_error_or_success([&] { data::read_image_header(bytes, "fuzz"); });
  expect_error_or_success([&] {
    const data::DecodedImage img = data::decode_image(bytes, "fuzz", kImagePixels);
    check(img.pixels.size() == static_cast<size_t>(img.height * img.width * img.channels), "decoded size");
  });
  expect_error_or_success([&] {
    const data::DecodedImage img = data::decode_image_rgba(bytes, "fuzz", kImagePixels);
    check(img.channels == 4 && img.pixels.size() == static_cast<size_t>(img.height * img.width * 4), "decoded RGBA size");
  });
}

void wav(const uint8_t* d, size_t n) {
  expect_error_or_success([&] {
    const data::Wav w = data::decode_wav({reinterpret_cast<const char*>(d), n}, "fuzz", int64_t(1) << 22);
    check(w.channels >= 1 && w.sample_rate >= 1, "decoded header");
  });
}

// Text: the first byte picks the reader (0: a text document, raw or gzip, then its sequences
// and a masked-LM corruption; 1: labelled JSONL; 2: labelled TSV; 3: tagged JSONL; 4: CoNLL),
// the rest is the file.
void text(const uint8_t* d, size_t n) {
  if (n == 0) return;
  const int mode = d[0] % 5;
  const char* ext[] = {".txt", ".jsonl", ".tsv", ".jsonl", ".conll"};
  const std::string path = scratch_path() + ext[mode];
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write " + path);
    if (n > 1 && std::fwrite(d + 1, 1, n - 1, f) != n - 1) throw std::runtime_error("cannot write " + path);
    std::fclose(f);
  }
  expect_error_or_success([&] {
    if (mode == 0) {
      data::TextReadOptions o;
      o.max_total_bytes = int64_t(1) << 24;
      const auto docs = data::read_text_documents(path, o);
      const data::TextSequences s = data::text_sequences(docs, 17);
      for (int64_t i = 0; i < s.ids.numel(); ++i)
        check(s.ids.data<int32_t>()[i] >= 0 && s.ids.data<int32_t>()[i] < 262, "byte ids in [0, 262)");
      Rng rng(n);
      Tensor in, labels;
      data::mask_tokens(s.ids, s.attention_mask, {}, rng, in, labels);
      for (int64_t i = 0; i < labels.numel(); ++i) {
        const int32_t y = labels.data<int32_t>()[i];
        check(y == -100 || y == s.ids.data<int32_t>()[i], "labels are the original ids or -100");
      }
    } else if (mode <= 2) {
      const data::LabelledText t = data::read_labelled_text(path);
      check(t.texts.size() == t.labels.size() && !t.texts.empty(), "one label per text");
    } else {
      const data::TaggedText t = data::read_tagged_text(path);
      check(t.size() > 0 && t.tags.size() == t.tokens.size() && t.lines.size() == t.tokens.size(), "sentences");
      for (int64_t i = 0; i < t.size(); ++i) {
        check(!t.tokens[i].empty() && t.tokens[i].size() == t.tags[i].size(), "one tag per token");
        for (const auto& tok : t.tokens[i]) check(!tok.empty(), "tokens are not empty");
      }
    }
  });
  std::remove(path.c_str());
}

// Meshes and point sets: the first byte picks the reader (OFF, PLY, XYZ, VRML), the rest is the
// file; what decodes is sampled and must give finite points on request.
void point_cloud(const uint8_t* d, size_t n) {
  if (n == 0) return;
  const std::string_view bytes(reinterpret_cast<const char*>(d) + 1, n - 1);
  expect_error_or_success([&] {
    data::Mesh m;
    switch (d[0] % 4) {
      case 0: m = data::decode_off(bytes, "fuzz.off"); break;
      case 1: m = data::decode_ply(bytes, "fuzz.ply"); break;
      case 2: m = data::decode_xyz(bytes, "fuzz.xyz"); break;
      default: m = data::decode_vrml(bytes, "fuzz.wrl"); break;
    }
    check(m.num_vertices() >= 1 && m.vertices.size() % 3 == 0 && m.triangles.size() % 3 == 0, "mesh arrays");
    for (int32_t i : m.triangles) check(i >= 0 && i < m.num_vertices(), "triangle indices in range");
    Rng rng(n);
    std::vector<float> p = data::sample_points(m, 32, rng, "fuzz");
    data::normalize_to_unit_sphere(p);
    for (float v : p) check(std::isfinite(v) && std::fabs(v) <= 1.0001f, "normalised points are finite, |p| <= 1");
  });
}

void flo(const uint8_t* d, size_t n) {
  expect_error_or_success([&] { data::read_flo(as_file(d, n)); });
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {
      {"safetensors", safetensors, "safetensors files (weights, inputs, checkpoints' container)"},
      {"checkpoint", checkpoint, "perceiver.cpp checkpoints: metadata config, tensors, model build"},
      {"torch_zip", torch_zip, "PyTorch pytorch_model.bin (zip + restricted unpickler)"},
      {"pickle", pickle, "the restricted unpickler on raw data.pkl bytes"},
      {"run_config", run_config, "run configs (JSON) incl. the read-back invariant"},
      {"hub_config", hub_config, "Hugging Face config.json (Perceiver IO, ViT) and preprocessor_config.json"},
      {"idx", idx, "IDX arrays (Fashion-MNIST), plain and gzip"},
      {"image", image, "PNG (libpng) and JPEG (libjpeg-turbo) decoding with the header limits"},
      {"flo", flo, "Middlebury .flo optical flow files"},
      {"wav", wav, "WAV audio (RIFF chunks, PCM and float formats)"},
      {"point_cloud", point_cloud, "meshes and point sets: OFF, PLY (ascii, binary), XYZ, VRML IndexedFaceSet"},
      {"text", text, "text documents (raw or gzip), byte sequences and masking; labelled JSONL and TSV"},
  };
  return t;
}

const Target* find_target(const std::string& name) {
  for (const Target& t : targets())
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace perceiver::fuzz
