// AdamW and LAMB against straightforward double-precision reimplementations; the weight-decay
// mask and its overrides; zero_grad; checkpoint state round trips (through safetensors) that
// continue bitwise like an uninterrupted run; strict load_state errors; the factory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kernels/cpu/optimizer.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/ops/convert.h"
#include "perceiver/optim/adamw.h"
#include "perceiver/optim/lamb.h"
#include "perceiver/optim/optimizer.h"
#include "testing/compare.h"

namespace perceiver {
namespace {

using optim::NamedTensor;
using optim::OptimizerOptions;

// Double-precision reference for one parameter tensor.
struct RefParam {
  std::vector<double> p, m, v;
  int64_t t = 0;
  bool decay = true;
};

void ref_adamw(RefParam& r, const std::vector<float>& g, double lr, const OptimizerOptions& o) {
  ++r.t;
  const double wd = r.decay ? o.weight_decay : 0.0;
  const double bc1 = 1 - std::pow(double(o.beta1), double(r.t));
  const double bc2 = 1 - std::pow(double(o.beta2), double(r.t));
  for (size_t i = 0; i < r.p.size(); ++i) {
    r.p[i] *= 1 - lr * wd;
    r.m[i] = o.beta1 * r.m[i] + (1 - double(o.beta1)) * g[i];
    r.v[i] = o.beta2 * r.v[i] + (1 - double(o.beta2)) * double(g[i]) * g[i];
    r.p[i] -= lr * (r.m[i] / bc1) / (std::sqrt(r.v[i] / bc2) + o.eps);
  }
}

void ref_lamb(RefParam& r, const std::vector<float>& g, double lr, const OptimizerOptions& o) {
  ++r.t;
  const double wd = r.decay ? o.weight_decay : 0.0;
  const double bc1 = 1 - std::pow(double(o.beta1), double(r.t));
  const double bc2 = 1 - std::pow(double(o.beta2), double(r.t));
  std::vector<double> u(r.p.size());
  double pn = 0, un = 0;
  for (size_t i = 0; i < r.p.size(); ++i) {
    r.m[i] = o.beta1 * r.m[i] + (1 - double(o.beta1)) * g[i];
    r.v[i] = o.beta2 * r.v[i] + (1 - double(o.beta2)) * double(g[i]) * g[i];
    u[i] = (r.m[i] / bc1) / (std::sqrt(r.v[i] / bc2) + o.eps) + wd * r.p[i];
    pn += r.p[i] * r.p[i];
    un += u[i] * u[i];
  }
  const double ratio = (pn > 0 && un > 0) ? std::sqrt(pn) / std::sqrt(un) : 1.0;
  for (size_t i = 0; i < r.p.size(); ++i) r.p[i] -= lr * ratio * u[i];
}

// A small model-like parameter set; "big" spans several kernel blocks (parallel path).
std::vector<NamedTensor> make_params(uint64_t seed) {
  return {
      {"perceiver.encoder.cross_attention.attention.self.query.weight", testing::randn({6, 5}, seed + 1)},
      {"perceiver.encoder.cross_attention.attention.self.query.bias", testing::randn({6}, seed + 2)},
      {"perceiver.embeddings.latents", testing::randn({4, 6}, seed + 3)},
      {"perceiver.encoder.self_attends.0.mlp.dense1.weight", testing::randn({300, 250}, seed + 4, 0.1f)},
  };
}

// Sets fresh deterministic gradients for step `step`; parameter `skip` (if >= 0) gets none.
void set_grads(std::vector<NamedTensor>& params, int step, int skip = -1) {
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].second.zero_grad();
    if (static_cast<int>(i) == skip) continue;
    params[i].second.set_grad(testing::randn(params[i].second.shape(), 1000 + 17 * step + i, 0.5f));
  }
}

std::vector<RefParam> make_ref(const std::vector<NamedTensor>& params, const optim::Optimizer& opt) {
  std::vector<RefParam> ref;
  for (auto& [name, t] : params) {
    RefParam r;
    r.p = testing::to_double(t);
    r.m.assign(r.p.size(), 0.0);
    r.v.assign(r.p.size(), 0.0);
    r.decay = opt.applies_weight_decay(name);
    ref.push_back(std::move(r));
  }
  return ref;
}

void run_against_reference(const std::string& kind) {
  std::vector<NamedTensor> params = make_params(7);
  OptimizerOptions o;
  o.weight_decay = 0.1f;
  auto opt = optim::make_optimizer(kind, params, o);
  EXPECT_EQ(opt->name(), kind);
  std::vector<RefParam> ref = make_ref(params, *opt);
  const float lrs[] = {1e-2f, 5e-3f, 2e-2f, 1e-2f, 3e-3f, 1e-2f};
  for (int s = 0; s < 6; ++s) {
    const int skip = s == 2 ? 1 : -1;  // the bias gets no gradient at step 2
    set_grads(params, s, skip);
    for (size_t i = 0; i < params.size(); ++i) {
      if (static_cast<int>(i) == skip) continue;
      const std::vector<float> g = params[i].second.grad().to_vector();
      if (kind == "adamw")
        ref_adamw(ref[i], g, lrs[s], o);
      else
        ref_lamb(ref[i], g, lrs[s], o);
    }
    opt->step(lrs[s]);
  }
  EXPECT_EQ(opt->step_count(), 6);
  const double tol = testing::f32_tol(6, 16);
  auto state = opt->state_tensors();
  ASSERT_EQ(state.size(), 3 * params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].first;
    EXPECT_TRUE(testing::all_close(params[i].second, ref[i].p, tol, kind + " " + name));
    EXPECT_EQ(state[3 * i].first, name + ".exp_avg");
    EXPECT_TRUE(testing::all_close(state[3 * i].second, ref[i].m, tol, name + ".exp_avg"));
    EXPECT_EQ(state[3 * i + 1].first, name + ".exp_avg_sq");
    EXPECT_TRUE(testing::all_close(state[3 * i + 1].second, ref[i].v, tol, name + ".exp_avg_sq"));
    EXPECT_EQ(state[3 * i + 2].first, name + ".step");
    EXPECT_EQ(state[3 * i + 2].second.data<int32_t>()[0], ref[i].t) << name;
  }
  EXPECT_EQ(ref[1].t, 5);  // the skipped parameter's own step count did not advance
}

TEST(Optimizer, AdamWMatchesDoubleReference) { run_against_reference("adamw"); }
TEST(Optimizer, LambMatchesDoubleReference) { run_against_reference("lamb"); }

std::vector<NamedTensor> clone_params(const std::vector<NamedTensor>& params);

std::vector<uint16_t> bf16_bits(const Tensor& t) {
  const uint16_t* p = t.bf16();
  return std::vector<uint16_t>(p, p + t.numel());
}

// A weight used in bf16 (ops::bf16_copy_of) gets its new rounding in AdamW's own pass: the same
// bits as rounding the updated weight, in place while nothing else holds the old copy, in a new
// tensor (the old one untouched) when something does; the update itself is unchanged.
TEST(Optimizer, AdamWRefreshesRememberedBf16Copies) {
  std::vector<NamedTensor> params = make_params(11);
  std::vector<NamedTensor> plain = clone_params(params);
  auto opt = optim::make_optimizer("adamw", params);
  auto opt_plain = optim::make_optimizer("adamw", plain);
  const Tensor& big = params[3].second;   // several kernel blocks
  const Tensor& small = params[0].second;
  const void* big_copy = ops::bf16_copy_of(big).cdata();
  Tensor held = ops::bf16_copy_of(small);  // somebody (a saved activation) still reads this one
  const std::vector<uint16_t> held_bits = bf16_bits(held);
  for (int s = 0; s < 3; ++s) {
    set_grads(params, s, s == 1 ? 3 : -1);  // the big weight gets no gradient at step 1
    set_grads(plain, s, s == 1 ? 3 : -1);
    opt->step(1e-2f);
    opt_plain->step(1e-2f);
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_EQ(params[i].second.to_vector(), plain[i].second.to_vector()) << params[i].first;
    const Tensor c = big.remembered_copy(DType::kBF16);
    ASSERT_TRUE(c.defined()) << "step " << s;
    EXPECT_EQ(c.cdata(), big_copy) << "rounded into a new tensor although nothing held the old one";
    EXPECT_EQ(bf16_bits(c), bf16_bits(ops::to_bf16(big))) << "step " << s;
    const Tensor cs = small.remembered_copy(DType::kBF16);
    ASSERT_TRUE(cs.defined());
    EXPECT_NE(cs.cdata(), held.cdata());
    EXPECT_EQ(bf16_bits(cs), bf16_bits(ops::to_bf16(small)));
    EXPECT_FALSE(params[1].second.remembered_copy(DType::kBF16).defined()) << "never used in bf16";
  }
  EXPECT_EQ(bf16_bits(held), held_bits) << "a copy still in use was overwritten";
}

TEST(Optimizer, LambTrustRatioIsOneForZeroParameter) {
  std::vector<NamedTensor> params = {{"w", Tensor::zeros({3, 4})}};
  OptimizerOptions o;
  o.weight_decay = 0.0f;
  optim::Lamb opt(params, o);
  params[0].second.set_grad(Tensor::full({3, 4}, -2.0f));
  opt.step(0.1f);
  // u = mhat / (sqrt(vhat) + eps) = -1 (up to eps); ratio 1 -> p = +0.1.
  for (float x : params[0].second.to_vector()) EXPECT_NEAR(x, 0.1f, 1e-6f);
  EXPECT_EQ(cpu::lamb_trust_ratio({0.0, 4.0}), 1.0f);
  EXPECT_EQ(cpu::lamb_trust_ratio({4.0, 0.0}), 1.0f);
  EXPECT_FLOAT_EQ(cpu::lamb_trust_ratio({16.0, 4.0}), 2.0f);
}

TEST(Optimizer, DefaultWeightDecayMaskByName) {
  const Tensor m2 = Tensor::zeros({4, 4}), v1 = Tensor::zeros({4});
  struct Case {
    std::string name;
    Tensor t;
    bool decay;
  };
  const std::vector<Case> cases = {
      {"perceiver.encoder.cross_attention.attention.self.query.weight", m2, true},
      {"perceiver.encoder.self_attends.0.mlp.dense1.weight", m2, true},
      {"perceiver.decoder.final_layer.weight", m2, true},
      {"perceiver.encoder.self_attends.0.mlp.dense1.bias", v1, false},
      {"perceiver.encoder.cross_attention.layernorm1.weight", v1, false},
      {"perceiver.encoder.cross_attention.layernorm1.bias", v1, false},
      {"perceiver.embeddings.latents", m2, false},
      {"perceiver.input_preprocessor.position_embeddings", m2, false},
      {"model.pos_emb", m2, false},
      {"block.norm.weight", m2, false},  // a 2-D weight, excluded by the "norm" name
      {"block.gain", v1, false},         // rank 1, excluded by rank
      {"block.scale", Tensor::zeros({}), false},
      {"block.bias.weight", m2, true},  // ".bias" must be the suffix
  };
  for (const Case& c : cases) EXPECT_EQ(optim::default_weight_decay(c.name, c.t), c.decay) << c.name;
}

TEST(Optimizer, DecayOverridesByNameSubstring) {
  std::vector<NamedTensor> params = {
      {"perceiver.decoder.final_layer.weight", Tensor::full({2, 3}, 1.0f)},
      {"perceiver.embeddings.latents", Tensor::full({2, 3}, 1.0f)},
      {"perceiver.encoder.query.weight", Tensor::full({2, 3}, 1.0f)},
  };
  OptimizerOptions o;
  o.weight_decay = 0.5f;
  o.decay_exclude = {"final_layer", "query"};
  o.decay_include = {"latents", "query"};  // exclude wins for "query"
  optim::AdamW opt(params, o);
  EXPECT_FALSE(opt.applies_weight_decay("perceiver.decoder.final_layer.weight"));
  EXPECT_TRUE(opt.applies_weight_decay("perceiver.embeddings.latents"));
  EXPECT_FALSE(opt.applies_weight_decay("perceiver.encoder.query.weight"));
  EXPECT_THROW(opt.applies_weight_decay("nope"), Error);
  // Zero gradients: only decoupled decay moves the parameters, p *= 1 - lr*wd.
  for (auto& [name, t] : params) t.set_grad(Tensor::zeros({2, 3}));
  opt.step(0.1f);
  for (float x : params[0].second.to_vector()) EXPECT_EQ(x, 1.0f);
  for (float x : params[1].second.to_vector()) EXPECT_FLOAT_EQ(x, 0.95f);
  for (float x : params[2].second.to_vector()) EXPECT_EQ(x, 1.0f);
}

TEST(Optimizer, ZeroGradDropsGradients) {
  std::vector<NamedTensor> params = make_params(1);
  set_grads(params, 0);
  auto opt = optim::make_optimizer("adamw", params);
  opt->zero_grad();
  for (auto& [name, t] : params) EXPECT_FALSE(t.grad().defined()) << name;
  // A step with no gradients changes nothing but the step count.
  const std::vector<float> before = params[0].second.to_vector();
  opt->step(0.1f);
  EXPECT_EQ(params[0].second.to_vector(), before);
  EXPECT_EQ(opt->step_count(), 1);
  EXPECT_EQ(opt->state_tensors()[2].second.data<int32_t>()[0], 0);
}

std::vector<NamedTensor> clone_params(const std::vector<NamedTensor>& params) {
  std::vector<NamedTensor> out;
  for (auto& [name, t] : params) out.emplace_back(name, t.clone());
  return out;
}

void check_round_trip(const std::string& kind, float ema_decay = 0.0f) {
  OptimizerOptions o;
  o.weight_decay = 0.05f;
  o.ema_decay = ema_decay;
  const int total = 6, split = 3;
  auto schedule = [](int s) { return 1e-2f / (1 + s); };
  // Uninterrupted run.
  std::vector<NamedTensor> full = make_params(3);
  auto opt_full = optim::make_optimizer(kind, full, o);
  for (int s = 0; s < total; ++s) {
    set_grads(full, s, s == 1 ? 0 : -1);
    opt_full->step(schedule(s));
    opt_full->update_ema();
  }
  // Interrupted run: save through safetensors at `split`, resume in fresh objects.
  std::vector<NamedTensor> part = make_params(3);
  auto opt_part = optim::make_optimizer(kind, part, o);
  for (int s = 0; s < split; ++s) {
    set_grads(part, s, s == 1 ? 0 : -1);
    opt_part->step(schedule(s));
    opt_part->update_ema();
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("perceiver_optim_state_" + kind + "_" + std::to_string(::getpid()) + ".safetensors"))
                               .string();
  io::save_safetensors(path, opt_part->state_tensors());
  std::map<std::string, Tensor> state = io::load_safetensors(path).tensors;
  std::filesystem::remove(path);
  std::vector<NamedTensor> resumed = clone_params(part);
  opt_part.reset();
  auto opt_resumed = optim::make_optimizer(kind, resumed, o);
  opt_resumed->load_state(state, split);
  EXPECT_EQ(opt_resumed->step_count(), split);
  for (int s = split; s < total; ++s) {
    set_grads(resumed, s, s == 1 ? 0 : -1);
    opt_resumed->step(schedule(s));
    opt_resumed->update_ema();
  }
  EXPECT_EQ(opt_resumed->step_count(), total);
  for (size_t i = 0; i < full.size(); ++i)
    EXPECT_EQ(full[i].second.to_vector(), resumed[i].second.to_vector()) << kind << " " << full[i].first;
  auto a = opt_full->state_tensors(), b = opt_resumed->state_tensors();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    if (a[i].second.dtype() == DType::kI32)
      EXPECT_EQ(a[i].second.data<int32_t>()[0], b[i].second.data<int32_t>()[0]) << a[i].first;
    else
      EXPECT_EQ(a[i].second.to_vector(), b[i].second.to_vector()) << a[i].first;
  }
}

TEST(Optimizer, AdamWStateRoundTripContinuesIdentically) { check_round_trip("adamw"); }
TEST(Optimizer, LambStateRoundTripContinuesIdentically) { check_round_trip("lamb"); }
TEST(Optimizer, EmaStateRoundTripContinuesIdentically) {
  check_round_trip("adamw", 0.9f);
  check_round_trip("lamb", 0.99f);
}

// The moving average against a double reference: started from the initial weights, then
// avg = d avg + (1 - d) p after every step with d = min(decay, (1 + t) / (10 + t)); swap_ema
// exchanges weights and averages exactly; checkpoints carry ".ema" and demand it back.
TEST(Optimizer, EmaFollowsTheWarmedUpDecayAndSwaps) {
  OptimizerOptions o;
  o.ema_decay = 0.8f;  // reached from step 35 on: both regimes of the warm-up are exercised
  std::vector<NamedTensor> params = make_params(11);
  auto opt = optim::make_optimizer("adamw", params, o);
  ASSERT_TRUE(opt->has_ema());
  std::vector<std::vector<double>> avg;
  for (auto& [name, t] : params) avg.push_back(testing::to_double(t));
  for (int s = 0; s < 40; ++s) {
    set_grads(params, s);
    opt->step(1e-2f);
    opt->update_ema();
    const double t = s + 1;
    const double d = std::min(0.8, (1 + t) / (10 + t));
    for (size_t i = 0; i < params.size(); ++i) {
      const std::vector<double> p = testing::to_double(params[i].second);
      for (size_t j = 0; j < p.size(); ++j) avg[i][j] = d * avg[i][j] + (1 - d) * p[j];
    }
  }
  std::vector<std::vector<float>> live;
  for (auto& [name, t] : params) live.push_back(t.to_vector());
  opt->swap_ema();
  for (size_t i = 0; i < params.size(); ++i) {
    // 40 float updates of values ~1: rounding stays far below the 1e-3 moves of the weights
    EXPECT_TRUE(testing::all_close(params[i].second, avg[i], 1e-5, params[i].first + " average"));
    EXPECT_NE(params[i].second.to_vector(), live[i]) << params[i].first << ": the average equals the weights";
  }
  opt->swap_ema();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_EQ(params[i].second.to_vector(), live[i]) << params[i].first;

  // state: one ".ema" per parameter; a state without them (a run without an average) is refused
  std::map<std::string, Tensor> state;
  int emas = 0;
  for (auto& [name, t] : opt->state_tensors()) {
    state[name] = t.clone();
    emas += name.size() > 4 && name.compare(name.size() - 4, 4, ".ema") == 0;
  }
  EXPECT_EQ(emas, static_cast<int>(params.size()));
  std::map<std::string, Tensor> plain;
  for (auto& [name, t] : state)
    if (name.compare(name.size() - 4, 4, ".ema") != 0) plain[name] = t;
  try {
    opt->load_state(plain, 40);
    FAIL() << "a state without averages was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing \"perceiver.embeddings.latents.ema\""), std::string::npos) << e.what();
  }
  // and one with averages is refused by an optimizer that keeps none
  auto no_ema = optim::make_optimizer("adamw", make_params(11));
  EXPECT_FALSE(no_ema->has_ema());
  EXPECT_THROW(no_ema->load_state(state, 40), Error);
  no_ema->update_ema();  // no-ops without an average
  no_ema->swap_ema();
}

TEST(Optimizer, StrictLoadStateListsEveryProblem) {
  std::vector<NamedTensor> params = make_params(5);
  auto opt = optim::make_optimizer("lamb", params);
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : opt->state_tensors()) state[name] = t.clone();
  const std::string q = "perceiver.encoder.cross_attention.attention.self.query.weight";
  state.erase(q + ".exp_avg");
  state["perceiver.embeddings.latents.exp_avg_sq"] = Tensor::zeros({6, 4});
  state["perceiver.encoder.cross_attention.attention.self.query.bias.step"] =
      Tensor::from_vector_i32({}, {9});
  state["perceiver.unknown.exp_avg"] = Tensor::zeros({1});
  state[q + ".exp_avg_sq"].fill(7.0f);
  try {
    opt->load_state(state, 4);
    FAIL() << "load_state accepted a bad state";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("4 problems"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing \"" + q + ".exp_avg\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("perceiver.embeddings.latents.exp_avg_sq\" must be float32 [4, 6], got float32 [6, 4]"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("query.bias.step\" must be in [0, 4]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected \"perceiver.unknown.exp_avg\""), std::string::npos) << msg;
  }
  // Nothing was loaded.
  for (float x : opt->state_tensors()[1].second.to_vector()) EXPECT_EQ(x, 0.0f);
  EXPECT_EQ(opt->step_count(), 0);
  EXPECT_THROW(opt->load_state({}, -1), Error);
}

TEST(Optimizer, FactoryAndValidationErrors) {
  std::vector<NamedTensor> params = make_params(2);
  try {
    optim::make_optimizer("sgd", params);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* part : {"\"sgd\"", "\"adamw\"", "\"lamb\""})
      EXPECT_NE(msg.find(part), std::string::npos) << msg;
  }
  OptimizerOptions bad;
  bad.beta1 = 1.0f;
  EXPECT_THROW(optim::make_optimizer("adamw", params, bad), Error);
  bad = {};
  bad.weight_decay = -1.0f;
  EXPECT_THROW(optim::make_optimizer("lamb", params, bad), Error);
  bad = {};
  bad.ema_decay = 1.0f;
  EXPECT_THROW(optim::make_optimizer("adamw", params, bad), Error);
  std::vector<NamedTensor> dup = {{"a", Tensor::zeros({2})}, {"a", Tensor::zeros({2})}};
  EXPECT_THROW(optim::make_optimizer("adamw", dup), Error);
  auto opt = optim::make_optimizer("adamw", params);
  EXPECT_THROW(opt->step(-1.0f), Error);
  EXPECT_THROW(opt->step(NAN), Error);
  params[0].second.set_grad(Tensor::zeros({5, 6}));
  EXPECT_THROW(opt->step(0.1f), Error);  // gradient shape differs from the parameter's
}

}  // namespace
}  // namespace perceiver
