// Point-cloud classification end to end: class folders of meshes (data.format "point_cloud"), the
// Perceiver with Fourier features of each point's own coordinates (model.input_positions
// "coordinates"), augmentation (rotation, scale, jitter), training that learns boxes from
// pyramids, and the model's invariance to the order of its points (a set, as the paper's
// point-cloud Perceiver). Also the folder source's examples and the augmentation's geometry.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/data/augment.h"
#include "perceiver/data/point_cloud_folder.h"
#include "perceiver/models/image_classifier.h"
#include "perceiver/train/trainer.h"
#include "testing/tiny_data.h"

namespace perceiver {
namespace {

namespace fs = std::filesystem;

// An OFF file of a box (sx, sy, sz) or a square pyramid (base sx x sy, height sz), offset by o.
void write_shape(const std::string& path, bool pyramid, float sx, float sy, float sz, float o) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path);
  if (!pyramid) {
    f << "OFF\n8 6 0\n";
    for (int z = 0; z < 2; ++z)
      for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 2; ++x) f << x * sx + o << " " << y * sy << " " << z * sz << "\n";
    f << "4 0 2 3 1\n4 4 5 7 6\n4 0 1 5 4\n4 2 6 7 3\n4 0 4 6 2\n4 1 3 7 5\n";
  } else {
    f << "OFF\n5 5 0\n0 0 0\n" << sx << " 0 0\n" << sx << " " << sy << " 0\n0 " << sy << " 0\n"
      << sx / 2 + o << " " << sy / 2 << " " << sz << "\n";
    f << "4 0 3 2 1\n3 0 1 4\n3 1 2 4\n3 2 3 4\n3 3 0 4\n";
  }
}

// train/ and test/ class folders: boxes and pyramids of varied proportions
void write_shapes(const std::string& root, int train_per_class, int test_per_class) {
  for (int i = 0; i < train_per_class + test_per_class; ++i)
    for (bool pyramid : {false, true}) {
      const std::string part = i < train_per_class ? "train" : "test";
      const float a = 1.0f + 0.13f * static_cast<float>(i % 5), b = 1.0f + 0.21f * static_cast<float>(i % 3);
      write_shape(root + "/" + part + "/" + (pyramid ? "pyramid" : "box") + "/s" + std::to_string(i) + ".off", pyramid,
                  a, b, 0.8f + 0.1f * static_cast<float>(i % 4), 0.05f * static_cast<float>(i));
    }
}

nlohmann::json point_model() {
  return {{"image_size", {128}}, {"in_channels", 3}, {"input_positions", "coordinates"}, {"max_resolution", {16, 16, 16}},
          {"num_fourier_bands", 4}, {"num_latents", 16}, {"d_latents", 32}, {"cross_attention_heads", 1},
          {"self_attention_heads", 2}, {"self_attends_per_block", 1}, {"num_classes", 2}};
}

TEST(PointCloudTrain, FolderSourceGivesUnitSphereSamplesDeterministically) {
  testing::TempDir tmp;
  write_shapes(tmp.path, 3, 2);
  data::PointCloudFolderOptions o;
  o.dir = tmp.path;
  o.num_points = 50;
  const data::ExampleSource train = data::point_cloud_folder_source(o, true), test = data::point_cloud_folder_source(o, false);
  EXPECT_EQ(train.size(), 6);
  EXPECT_EQ(test.size(), 4);
  EXPECT_EQ(train.class_names(), (std::vector<std::string>{"box", "pyramid"}));
  EXPECT_EQ(train.example_shape(), (Shape{50, 3}));
  const data::Dataset a = train.load_all(), b = train.load_all();
  EXPECT_EQ(a.inputs.to_vector(), b.inputs.to_vector());  // the same points from a file every time
  const std::vector<float> v = a.inputs.to_vector();
  for (int64_t e = 0; e < a.size(); ++e) {
    double max_r = 0, mean[3] = {0, 0, 0};
    for (int64_t i = 0; i < 50; ++i) {
      const float* p = v.data() + (e * 50 + i) * 3;
      max_r = std::max(max_r, std::sqrt(double(p[0]) * p[0] + double(p[1]) * p[1] + double(p[2]) * p[2]));
      for (int k = 0; k < 3; ++k) mean[k] += p[k] / 50.0;
    }
    EXPECT_NEAR(max_r, 1.0, 1e-5) << e;
    for (double m : mean) EXPECT_NEAR(m, 0.0, 1e-5) << e;
  }
  // a file of another kind, and a missing folder, are errors naming them
  std::ofstream(tmp.path + "/train/box/notes.txt") << "x";
  EXPECT_THROW(
      {
        try {
          data::point_cloud_folder_source(o, true);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("notes.txt: not a .off/.ply/.xyz/.wrl file"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  o.dir = tmp.path + "/missing";
  EXPECT_THROW(data::point_cloud_folder_source(o, true), Error);
}

TEST(PointCloudTrain, AugmentationRotatesScalesAndJitters) {
  std::vector<float> p = {1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 1, 1};
  const std::vector<float> orig = p;
  auto norms = [](const std::vector<float>& x) {
    std::vector<double> n;
    for (size_t i = 0; i < x.size(); i += 3) n.push_back(std::sqrt(double(x[i]) * x[i] + double(x[i + 1]) * x[i + 1] + double(x[i + 2]) * x[i + 2]));
    return n;
  };
  data::PointAugmentConfig z;
  z.rotate = "z";
  Rng rng(5);
  data::augment_points(p.data(), 4, z, rng);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(p[3 * i + 2], orig[3 * i + 2]);  // about the vertical axis: z unchanged
    EXPECT_NEAR(norms(p)[i], norms(orig)[i], 1e-5);
  }
  EXPECT_NE(p, orig);
  p = orig;
  data::PointAugmentConfig all;
  all.rotate = "xyz";
  data::augment_points(p.data(), 4, all, rng);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(norms(p)[i], norms(orig)[i], 1e-5);
  EXPECT_NE(p[2], orig[2]);
  // the angle between two points is kept by a rotation: (1,0,0).(0,2,0) = 0
  EXPECT_NEAR(p[0] * p[3] + p[1] * p[4] + p[2] * p[5], 0.0, 1e-5);
  p = orig;
  data::PointAugmentConfig scale;
  scale.scale_min = 0.5f;
  scale.scale_max = 0.5f;
  data::augment_points(p.data(), 4, scale, rng);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_FLOAT_EQ(p[i], 0.5f * orig[i]);
  p = orig;
  data::PointAugmentConfig jitter;
  jitter.jitter = 0.01f;
  data::augment_points(p.data(), 4, jitter, rng);
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(p[i], orig[i], 0.06);
    EXPECT_NE(p[i], orig[i]);
  }
  // the same draws from the same seed
  std::vector<float> q1 = orig, q2 = orig;
  Rng r1(9), r2(9);
  data::augment_points(q1.data(), 4, all, r1);
  data::augment_points(q2.data(), 4, all, r2);
  EXPECT_EQ(q1, q2);
  data::PointAugmentConfig bad;
  bad.rotate = "yaw";
  EXPECT_THROW(data::augment_points(q1.data(), 4, bad, r1), Error);
}

TEST(PointCloudTrain, ThePerceiverIsInvariantToTheOrderOfItsPoints) {
  auto model = models::make_image_classifier(models::normalize_image_classifier_config(point_model()), 3);
  model->train(false);
  Rng rng(11);
  std::vector<float> x(2 * 128 * 3);
  for (float& v : x) v = 2 * rng.uniform() - 1;
  // the same points in reverse order
  std::vector<float> reversed(x.size());
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 128; ++i)
      for (int k = 0; k < 3; ++k) reversed[(b * 128 + (127 - i)) * 3 + k] = x[(b * 128 + i) * 3 + k];
  autograd::NoGradGuard no_grad;
  const std::vector<float> a = model->forward(Tensor::from_vector({2, 128, 3}, x)).to_vector();
  const std::vector<float> b = model->forward(Tensor::from_vector({2, 128, 3}, reversed)).to_vector();
  ASSERT_EQ(a.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
  // the positions matter: the same points moved give other logits
  std::vector<float> moved = x;
  for (size_t i = 0; i < moved.size(); i += 3) moved[i] = -moved[i];
  const std::vector<float> c = model->forward(Tensor::from_vector({2, 128, 3}, moved)).to_vector();
  EXPECT_GT(std::fabs(c[0] - a[0]) + std::fabs(c[1] - a[1]), 1e-4);
  // coordinates need a set of elements whose first channels are the position
  nlohmann::json grid = point_model();
  grid["image_size"] = {8, 8};
  EXPECT_THROW(models::normalize_image_classifier_config(grid), Error);
  nlohmann::json narrow = point_model();
  narrow["in_channels"] = 2;
  EXPECT_THROW(models::normalize_image_classifier_config(narrow), Error);
}

TEST(PointCloudTrain, LearnsBoxesFromPyramids) {
  testing::TempDir tmp;
  write_shapes(tmp.path + "/shapes", 16, 6);
  const nlohmann::json j = {
      {"model", point_model()},
      {"train", {{"epochs", 12}, {"batch_size", 8}, {"lr", 3e-3}, {"warmup_steps", 2}, {"threads", 1}, {"seed", 1}}},
      {"data", {{"format", "point_cloud"}, {"dir", tmp.path + "/shapes"}, {"rotate", "z"}, {"scale", {0.9, 1.1}},
                {"jitter", 0.005}}}};
  train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = tmp.path + "/run";
  const train::TrainResult r = train::run_training(train::parse_run_config(j), opt);
  EXPECT_EQ(r.last_eval.count, 12);
  EXPECT_GE(r.last_eval.accuracy(), 0.9) << "test loss " << r.last_eval.loss;
  EXPECT_TRUE(fs::exists(tmp.path + "/run/export/config.json"));
  // a model without coordinates, or of another input shape, is refused with the reason
  nlohmann::json flat = j;
  flat["model"]["image_size"] = {8, 8};
  flat["model"].erase("input_positions");
  flat["model"].erase("max_resolution");
  opt.out_dir = tmp.path + "/flat";
  EXPECT_THROW(train::run_training(train::parse_run_config(flat), opt), Error);
  nlohmann::json shifted = j;
  shifted["data"]["max_shift"] = 1;
  EXPECT_THROW(train::parse_run_config(shifted), Error);
}

}  // namespace
}  // namespace perceiver
