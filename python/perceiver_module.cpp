// The `perceiver` Python module (pybind11): the same models, task helpers and trainer as the
// command-line program, called with NumPy arrays.
//
// - Arrays go in and out without copies: a C-contiguous float32 or int32 array becomes a tensor
//   on the array's own buffer (the tensor keeps the array alive); outputs come back as arrays on
//   the tensors' memory (the array keeps the tensor alive). Other dtypes and layouts are
//   converted once (float64 -> float32, integers -> int32 when in range).
// - The GIL is released while C++ computes, so other Python threads run meanwhile.
// - perceiver::Error becomes perceiver.Error (a ValueError) with the same message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <xmmintrin.h>

#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "perceiver/autograd/grad_mode.h"
#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/core/parallel.h"
#include "perceiver/core/precision.h"
#include "perceiver/data/image_processor.h"
#include "perceiver/data/optical_flow.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/models/registry.h"
#include "perceiver/ops/convert.h"
#include "perceiver/tasks/common.h"
#include "perceiver/tasks/fill_mask.h"
#include "perceiver/tasks/image_classification.h"
#include "perceiver/tasks/optical_flow.h"
#include "perceiver/train/checkpoint.h"
#include "perceiver/train/trainer.h"

namespace py = pybind11;

namespace perceiver::python {
namespace {

namespace pio = models::perceiver_io;

// The library computes with denormals flushed to zero (core/parallel.h: ~100x faster where
// training drifts into them); the interpreter's thread, which computes too, gets its own
// floating-point mode back after every call.
class KeepFloatMode {
 public:
  KeepFloatMode() : csr_(_mm_getcsr()) { _mm_setcsr(csr_ | 0x8040u); }  // FTZ | DAZ
  ~KeepFloatMode() { _mm_setcsr(csr_); }

 private:
  unsigned csr_;
};

// ---- arrays <-> tensors ---------------------------------------------------------------------

// A NumPy array as a tensor on its buffer. Float and integer arrays of other types are
// converted once; anything else is an Error naming the input.
Tensor to_tensor(const std::string& name, const py::handle& value) {
  py::array arr = py::array::ensure(value);
  check(static_cast<bool>(arr), "[python] input '", name, "': expected a NumPy array (or something np.asarray takes), got ",
        std::string(py::str(py::type::of(value))));
  const char kind = arr.dtype().kind();
  DType dtype;
  if (arr.dtype().is(py::dtype::of<float>())) {
    dtype = DType::kF32;
  } else if (arr.dtype().is(py::dtype::of<int32_t>())) {
    dtype = DType::kI32;
  } else if (kind == 'f') {
    arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(arr);
    dtype = DType::kF32;
  } else if (kind == 'i' || kind == 'u' || kind == 'b') {
    py::module_ np = py::module_::import("numpy");
    if (arr.size() > 0 && kind != 'b') {
      const int64_t lo = np.attr("min")(arr).cast<int64_t>();
      const double hi = np.attr("max")(arr).cast<double>();
      check(lo >= std::numeric_limits<int32_t>::min() && hi <= std::numeric_limits<int32_t>::max(), "[python] input '",
            name, "': integer values must fit int32, got the range [", lo, ", ", hi, "]");
    }
    arr = py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(arr);
    dtype = DType::kI32;
  } else {
    throw_error("[python] input '", name, "': dtype ", std::string(py::str(arr.dtype())),
                " is not supported; expected float32 or int32 (or a float or integer type converted to them)");
  }
  if (!(arr.flags() & py::array::c_style) || reinterpret_cast<uintptr_t>(arr.data()) % arr.itemsize() != 0) {
    arr = dtype == DType::kF32 ? py::array(py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(arr))
                               : py::array(py::array_t<int32_t, py::array::c_style | py::array::forcecast>::ensure(arr));
  }
  Shape shape(arr.shape(), arr.shape() + arr.ndim());
  // The tensor holds a reference to the array; dropping it needs the GIL, which the last
  // tensor may not hold (a C++ thread).
  auto* holder = new py::object(arr);
  std::shared_ptr<void> owner(holder, [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return Tensor::from_external(const_cast<void*>(arr.data()), shape, dtype, std::move(owner));
}

// A tensor as a NumPy array on the tensor's memory (bf16 is widened to a float32 copy).
py::array to_numpy(const Tensor& t_in) {
  Tensor t = t_in.dtype() == DType::kBF16 || t_in.dtype() == DType::kF16 ? ops::to_f32(t_in) : t_in;
  py::dtype dtype = t.dtype() == DType::kI32 ? py::dtype::of<int32_t>() : py::dtype::of<float>();
  auto* keep = new std::shared_ptr<const void>(t.storage_owner());
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  return py::array(dtype, shape, {}, t.cdata(), base);
}

models::TensorMap to_tensors(const py::dict& inputs) {
  models::TensorMap out;
  for (const auto& [k, v] : inputs) {
    check(py::isinstance<py::str>(k), "[python] input names must be strings, got ",
          std::string(py::str(py::type::of(k))));
    const std::string name = k.cast<std::string>();
    out[name] = to_tensor(name, v);
  }
  return out;
}

py::dict to_dict(const models::TensorMap& tensors) {
  py::dict out;
  for (const auto& [name, t] : tensors) out[py::str(name)] = to_numpy(t);
  return out;
}

// JSON <-> Python through the json module (configs and metrics records are small).
py::object to_python(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }
nlohmann::json to_json(const py::handle& obj, const std::string& what) {
  const std::string text = py::module_::import("json").attr("dumps")(obj).cast<std::string>();
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw_error("[python] ", what, ": not JSON: ", e.what());
  }
}

std::string path_of(const py::handle& obj) { return py::str(py::module_::import("os").attr("fspath")(obj)); }

// An image argument: a path (str or os.PathLike), encoded PNG/JPEG bytes, or a uint8 array
// (H, W, 3) RGB or (H, W) grey.
data::RgbImage to_image(const py::handle& obj, const std::string& what, int64_t max_pixels) {
  if (py::isinstance<py::bytes>(obj))
    return data::decode_image_rgb(obj.cast<std::string>(), what, max_pixels);
  if (py::isinstance<py::str>(obj) || py::hasattr(obj, "__fspath__")) return data::load_image_rgb(path_of(obj), max_pixels);
  py::array arr = py::array::ensure(obj);
  check(static_cast<bool>(arr), "[python] ", what, ": expected a path, PNG/JPEG bytes or a uint8 array, got ",
        std::string(py::str(py::type::of(obj))));
  check(arr.dtype().is(py::dtype::of<uint8_t>()), "[python] ", what, ": expected a uint8 array (H, W, 3) or (H, W), got dtype ",
        std::string(py::str(arr.dtype())));
  check(arr.ndim() == 2 || (arr.ndim() == 3 && arr.shape(2) == 3), "[python] ", what,
        ": expected a uint8 array of shape (H, W, 3) or (H, W), got ndim ", arr.ndim());
  const int64_t h = arr.shape(0), w = arr.shape(1);
  check(h > 0 && w > 0 && h * w <= max_pixels, "[python] ", what, ": expected 1 to ", max_pixels, " pixels, got ", h,
        " x ", w);
  py::array_t<uint8_t, py::array::c_style | py::array::forcecast> c = arr;
  std::vector<uint8_t> pixels(static_cast<size_t>(h * w * 3));
  const uint8_t* src = c.data();
  if (arr.ndim() == 3) std::copy(src, src + pixels.size(), pixels.begin());
  else
    for (int64_t i = 0; i < h * w; ++i) pixels[3 * i] = pixels[3 * i + 1] = pixels[3 * i + 2] = src[i];
  return data::make_rgb_image(h, w, std::move(pixels));
}

// ---- models -----------------------------------------------------------------------------------

// A loaded model: any model folder, a run's directory (its export/) or a run checkpoint.
struct PyModel {
  std::shared_ptr<models::Model> model;
  std::string source;
  bool allow_nonfinite = false;
};

std::shared_ptr<models::Model> load_any(const std::string& path) {
  namespace fs = std::filesystem;
  check(fs::exists(path), "[python] ", path, ": no such file or directory (expected a model folder, a run directory or "
        "a run checkpoint .safetensors)");
  if (fs::is_directory(path)) {
    // a run directory (its config.json is the run config): the model folder it exported
    if (fs::exists(path + "/export/config.json") && fs::exists(path + "/metrics.jsonl"))
      return io::load_model_folder(path + "/export");
    return io::load_model_folder(path);
  }
  const train::Checkpoint ckpt = train::read_checkpoint(path);
  if (ckpt.config.model.contains("hub_config")) {  // text and Perceiver IO runs: the hub config builds the model
    std::unique_ptr<models::Model> m = models::create_model(ckpt.config.model.at("hub_config"), path + " model.hub_config");
    m->load_state_dict(ckpt.params, path);
    m->train(false);
    return m;
  }
  return train::model_from_checkpoint(ckpt, path);
}

PyModel load(const py::object& path, const std::string& precision, bool allow_nonfinite) {
  PyModel m;
  m.source = path_of(path);
  m.allow_nonfinite = allow_nonfinite;
  const Precision p = parse_precision(precision);
  {
    py::gil_scoped_release nogil;
    m.model = load_any(m.source);
    tasks::check_finite_parameters(*m.model, "python", m.source, allow_nonfinite);
    if (p != Precision::kF32) m.model->set_precision(p, /*keep_f32_weights=*/false);  // lean, as the CLI
  }
  return m;
}

py::dict call(const PyModel& self, const py::dict& inputs, bool trace) {
  models::TensorMap in = to_tensors(inputs), out;
  {
    KeepFloatMode keep;
    py::gil_scoped_release nogil;
    tasks::check_finite(in, "python", self.source, "input", self.allow_nonfinite);
    autograd::NoGradGuard no_grad;
    models::TensorMap tr;
    out = self.model->forward(in, trace ? &tr : nullptr);
    tasks::check_finite(out, "python", self.source, "output", self.allow_nonfinite);
    if (trace) out.insert(tr.begin(), tr.end());
  }
  return to_dict(out);
}

py::dict state_dict(const PyModel& self) {
  py::dict out;
  self.model->visit_parameters([&](const std::string& name, Tensor& p) { out[py::str(name)] = to_numpy(p); });
  self.model->visit_buffers([&](const std::string& name, Tensor& b) { out[py::str(name)] = to_numpy(b); });
  return out;
}

const pio::PerceiverIO& perceiver_io(const PyModel& m, pio::PerceiverTask task, const std::string& who) {
  const auto* p = dynamic_cast<const pio::PerceiverIO*>(m.model.get());
  check(p != nullptr && p->task() == task, "[", who, "] ", m.source, ": expected a ", pio::architecture_name(task),
        " model, got a ", m.model->architecture());
  return *p;
}

// ---- task helpers -----------------------------------------------------------------------------

py::list classify(const tasks::ImageClassifier& c, const py::list& images, int64_t top, int64_t max_pixels,
                  bool allow_nonfinite) {
  check(top >= 1, "[classify] top: expected >= 1, got ", top);
  std::vector<data::RgbImage> decoded;
  for (size_t i = 0; i < images.size(); ++i)
    decoded.push_back(to_image(images[i], "image " + std::to_string(i), max_pixels));
  std::vector<std::vector<tasks::LabelScore>> ranked;
  {
    KeepFloatMode keep;
    py::gil_scoped_release nogil;
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < decoded.size(); ++i) {  // one by one: each image keeps its own size before the processor
      const Tensor logits = c.logits({decoded[i]});
      tasks::check_finite("logits", logits, "classify", "image " + std::to_string(i), "output", allow_nonfinite);
      ranked.push_back(c.top_k(logits, 0, top));
    }
  }
  py::list out;
  for (const auto& r : ranked) {
    py::list row;
    for (const tasks::LabelScore& s : r)
      row.append(py::dict(py::arg("label") = s.label, py::arg("index") = s.index, py::arg("probability") = s.probability));
    out.append(row);
  }
  return out;
}

py::dict fill_mask(const PyModel& m, const std::string& text, const std::vector<std::pair<int64_t, int64_t>>& spans,
                   int64_t top) {
  const pio::PerceiverIO& model = perceiver_io(m, pio::PerceiverTask::kMaskedLM, "fill_mask");
  check(top >= 0, "[fill_mask] top: expected >= 0, got ", top);
  std::vector<tasks::ByteSpan> byte_spans;
  for (const auto& [b, e] : spans) byte_spans.push_back({b, e});
  tasks::FilledMask r;
  {
    KeepFloatMode keep;
    py::gil_scoped_release nogil;
    r = tasks::fill_mask(model, tasks::masked_content(text, byte_spans), top, m.allow_nonfinite, "fill_mask");
  }
  py::list ranked;
  for (const auto& row : r.top) {
    py::list l;
    for (const tasks::TokenScore& t : row)
      l.append(py::dict(py::arg("id") = t.id, py::arg("token") = t.text, py::arg("probability") = t.probability));
    ranked.append(l);
  }
  return py::dict(py::arg("text") = r.text, py::arg("positions") = r.positions, py::arg("top") = ranked);
}

py::array flow(const PyModel& m, const py::object& frame1, const py::object& frame2, int64_t min_overlap,
               int64_t tile_batch, float flow_scale, int64_t max_pixels, int64_t downscale) {
  const pio::PerceiverIO& model = perceiver_io(m, pio::PerceiverTask::kOpticalFlow, "flow");
  const data::RgbImage f1 = to_image(frame1, "frame1", max_pixels), f2 = to_image(frame2, "frame2", max_pixels);
  tasks::FlowOptions o;
  o.min_overlap = min_overlap;
  o.tile_batch = tile_batch;
  o.flow_scale = flow_scale;
  o.downscale = downscale;
  o.allow_nonfinite = m.allow_nonfinite;
  Tensor f;
  {
    KeepFloatMode keep;
    py::gil_scoped_release nogil;
    f = tasks::estimate_flow(model, f1, f2, o);
  }
  return to_numpy(f);
}

py::array flow_to_color(const py::array& flow, float max_flow) {
  py::array_t<float, py::array::c_style | py::array::forcecast> f = flow;
  check(f.ndim() == 3 && f.shape(2) == 2, "[flow_to_color] expected a (H, W, 2) flow, got ndim ", f.ndim());
  Tensor t = Tensor::empty({f.shape(0), f.shape(1), 2});
  std::copy(f.data(), f.data() + f.size(), t.f32());
  const data::RgbImage img = data::flow_to_color(t, max_flow);
  py::array_t<uint8_t> out({img.height, img.width, int64_t{3}});
  std::copy(img.pixels.begin(), img.pixels.end(), out.mutable_data());
  return std::move(out);
}

// ---- training ---------------------------------------------------------------------------------

py::dict train_run(const py::object& config, const std::string& out, const py::object& overrides, bool resume, bool force,
               const py::object& init, int threads, bool quiet, const py::object& progress) {
  nlohmann::json j;
  std::string what = "config";
  if (py::isinstance<py::dict>(config)) {
    j = to_json(config, "config");
  } else {
    what = path_of(config);
    j = read_json_file(what, "config");
  }
  check(j.is_object(), "[config] ", what, ": expected a JSON object with \"model\", \"train\" and \"data\"");
  if (py::isinstance<py::dict>(overrides)) {
    for (const auto& [k, v] : overrides.cast<py::dict>())
      train::apply_config_override(j, k.cast<std::string>() + "=" + to_json(v, "override " + k.cast<std::string>()).dump());
  } else if (!overrides.is_none()) {
    for (const auto& o : overrides) train::apply_config_override(j, o.cast<std::string>());
  }
  train::RunConfig cfg;
  try {
    cfg = train::parse_run_config(j);
  } catch (const Error& e) {  // name the file, as the command does
    const std::string m = e.what(), prefix = "[config] ";
    if (what == "config" || m.rfind(prefix, 0) != 0) throw;
    throw Error(prefix + what + ": " + m.substr(prefix.size()));
  }
  if (threads > 0) cfg.train.threads = threads;
  train::TrainOptions opt;
  opt.out_dir = out;
  opt.resume = resume;
  opt.force = force;
  opt.quiet = quiet;
  if (!init.is_none()) opt.init_dir = path_of(init);
  // Ctrl-C (KeyboardInterrupt) and an exception raised by the callback stop the run as Ctrl-C
  // does on the command line (checkpoint saved); the exception is raised again afterwards.
  std::optional<py::error_already_set> pending;
  opt.stop_requested = [&pending]() {
    py::gil_scoped_acquire gil;
    if (!pending && PyErr_CheckSignals() != 0) pending.emplace();
    return pending.has_value();
  };
  if (!progress.is_none()) {
    opt.on_record = [&pending, &progress](const nlohmann::json& record) {
      py::gil_scoped_acquire gil;
      if (pending) return;
      try {
        progress(to_python(record));
      } catch (py::error_already_set& e) {
        pending.emplace(std::move(e));
      }
    };
  }
  train::TrainResult r;
  {
    KeepFloatMode keep;
    py::gil_scoped_release nogil;
    r = train::run_training(cfg, opt);
  }
  if (pending) throw std::move(*pending);
  py::dict d(py::arg("steps") = r.steps, py::arg("interrupted") = r.interrupted, py::arg("seconds") = r.seconds,
             py::arg("samples_per_s") = r.train_samples_per_s, py::arg("diverged") = r.diverged,
             py::arg("out") = out, py::arg("model_dir") = out + "/export");
  if (r.last_eval.count > 0) {
    d["test_loss"] = r.last_eval.loss;
    d["test_count"] = r.last_eval.count;
    d["test_epoch"] = r.last_eval_epoch;  // the epoch evaluated (train.eval_every)
    if (!r.last_eval.regression) d["test_accuracy"] = r.last_eval.accuracy();
  }
  return d;
}

}  // namespace
}  // namespace perceiver::python

PYBIND11_MODULE(perceiver, m) {
  using namespace perceiver;
  using namespace perceiver::python;
  m.doc() = "perceiver.cpp: Perceiver, Perceiver IO and ViT models in C++, called with NumPy arrays";
  m.attr("__version__") = "0.1.0";
  py::register_exception<Error>(m, "Error", PyExc_ValueError);

  m.def("set_num_threads", [](int n) {
          KeepFloatMode keep;
          set_num_threads(n);
        }, py::arg("n"),
        "threads for every later call (n <= 0: all hardware threads)");
  m.def("get_num_threads", [] { return num_threads(); });
  // For the tests: an array through the same conversion as a model's inputs and outputs.
  m.def("_roundtrip", [](const py::object& a) { return to_numpy(to_tensor("array", a)); }, py::arg("array"));

  py::class_<PyModel>(m, "Model", "A loaded model: call it on a dict of arrays, get a dict of arrays back")
      .def_property_readonly("architecture", [](const PyModel& s) { return s.model->architecture(); })
      .def_property_readonly("config", [](const PyModel& s) { return to_python(s.model->hub_config()); },
                             "the hub-layout config.json as a dict")
      .def_property_readonly("source", [](const PyModel& s) { return s.source; })
      .def_property_readonly("num_parameters", [](const PyModel& s) { return s.model->num_parameters(); })
      .def_property(
          "precision", [](const PyModel& s) { return std::string(precision_name(s.model->precision())); },
          [](PyModel& s, const std::string& p) {
            py::gil_scoped_release nogil;
            s.model->set_precision(parse_precision(p), s.model->keeps_f32_weights() || s.model->precision() == Precision::kF32);
          },
          "\"f32\" or \"bf16\" (bf16: linear layers multiply in bfloat16)")
      .def_readwrite("allow_nonfinite", &PyModel::allow_nonfinite)
      .def("__call__", &call, py::arg("inputs"), py::arg("trace") = false,
           "inputs: dict name -> array; returns dict name -> array (trace=True adds the intermediate tensors)")
      .def("state_dict", &state_dict, "parameters and buffers under their Hugging Face names (arrays on the weights)")
      .def("__repr__", [](const PyModel& s) {
        return "<perceiver.Model " + s.model->architecture() + " from " + s.source + ", " +
               std::to_string(s.model->num_parameters()) + " parameters>";
      });

  m.def("load", &load, py::arg("path"), py::arg("precision") = "f32", py::arg("allow_nonfinite") = false,
        "a model folder (config.json + weights), a run directory (its export/) or a run checkpoint");

  py::class_<tasks::ImageClassifier>(m, "ImageClassifier", "an image classification model folder with its processor")
      .def(py::init([](const py::object& path, int64_t size, int64_t crop_size, const std::string& crop_offset,
                       const std::string& precision) {
             tasks::ClassifierOptions o;
             o.size = size;
             o.crop_size = crop_size;
             o.crop_offset = crop_offset;
             const std::string dir = path_of(path);
             const Precision p = parse_precision(precision);
             py::gil_scoped_release nogil;
             tasks::ImageClassifier c = tasks::ImageClassifier::load(dir, o);
             tasks::check_finite_parameters(c.model(), "classify", dir, false);
             if (p != Precision::kF32) c.model().set_precision(p, false);
             return c;
           }),
           py::arg("path"), py::arg("size") = 0, py::arg("crop_size") = 0, py::arg("crop_offset") = "",
           py::arg("precision") = "f32")
      .def_property_readonly("labels", &tasks::ImageClassifier::labels)
      .def_property_readonly("architecture", &tasks::ImageClassifier::architecture)
      .def("classify", &classify, py::arg("images"), py::arg("top") = 5,
           py::arg("max_pixels") = data::kDefaultMaxImagePixels, py::arg("allow_nonfinite") = false,
           "images: paths, PNG/JPEG bytes or uint8 arrays; per image a list of {label, index, probability}");

  m.def("fill_mask", &fill_mask, py::arg("model"), py::arg("text"),
        py::arg("spans") = std::vector<std::pair<int64_t, int64_t>>{}, py::arg("top") = 0,
        "fills every [MASK] (and the byte spans (start, end)) of text with a PerceiverForMaskedLM");
  m.def("flow", &flow, py::arg("model"), py::arg("frame1"), py::arg("frame2"), py::arg("min_overlap") = 20,
        py::arg("tile_batch") = 1, py::arg("flow_scale") = 20.0f, py::arg("max_pixels") = data::kDefaultMaxImagePixels,
        py::arg("downscale") = 1,
        "(H, W, 2) float32 optical flow from frame1 to frame2 with a PerceiverForOpticalFlow (downscale D: measured "
        "on both frames shrunk by D, as `perceiver flow --downscale`)");
  m.def("flow_to_color", &flow_to_color, py::arg("flow"), py::arg("max_flow") = 0.0f,
        "the Baker et al. colour-wheel picture of a (H, W, 2) flow, uint8 (H, W, 3)");
  m.def("train", &train_run, py::arg("config"), py::arg("out") = "runs/default", py::arg("overrides") = py::none(),
        py::arg("resume") = false, py::arg("force") = false, py::arg("init") = py::none(), py::arg("threads") = 0,
        py::arg("quiet") = false, py::arg("progress") = py::none(),
        "trains as `perceiver train` does; progress(record) receives every metrics.jsonl record");
}
