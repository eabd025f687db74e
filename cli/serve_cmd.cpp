// `perceiver serve --model DIR [--host H] [--port P]`: an HTTP inference server (cpp-httplib).
//
//   GET  /healthz      200 {"status": "ok", "architecture", "endpoints"} (503 while stopping)
//   GET  /metrics      Prometheus text: requests, latency and batch-size histograms, rejections, queue
//   POST /v1/run       any model: a safetensors body of named inputs -> safetensors of the outputs
//   POST /v1/classify  image classifiers: the image file as the body (or multipart field "image"),
//                      ?top=K -> {"labels": [{"label", "index", "probability"}, ...]}
//   POST /v1/fill-mask PerceiverForMaskedLM: {"text", "spans": [[start, end], ...], "top"} ->
//                      {"text", "positions", "top": [[{"id", "token", "probability"}, ...], ...]}
//
// Concurrent requests are batched (serve_batcher.h: up to --max-batch examples, waiting at most
// --batch-wait-ms after the first). Limits answer 4xx naming the limit: bodies over
// --max-body-mib (413), images over --max-image-pixels (400), more than --max-queue waiting
// requests (503). SIGTERM or SIGINT stops accepting connections, finishes the requests in flight
// and exits 0.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "commands.h"
#include "finite_check.h"
#include "perceiver/core/allocator.h"
#include "perceiver/core/error.h"
#include "perceiver/core/json_reader.h"
#include "perceiver/core/parallel.h"
#include "perceiver/io/model_folder.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/models/registry.h"
#include "perceiver/tasks/fill_mask.h"
#include "perceiver/tasks/image_classification.h"
#include "serve_batcher.h"
#include "serve_metrics.h"

namespace perceiver::cli {
namespace {

namespace pio = models::perceiver_io;
using Clock = std::chrono::steady_clock;

struct ServeArgs {
  std::string model, host = "127.0.0.1";
  int port = 8080, http_threads = 64;
  int64_t max_batch = 8, max_queue = 64;
  double batch_wait_ms = 5, max_body_mib = 16, max_cached_mib = 512;
  int64_t max_image_pixels = 4096 * 4096;
  CommonOptions common;
};

// A request the server refuses: its HTTP status and message.
struct HttpError {
  int status;
  std::string message;
};

void send_json(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(j.dump() + "\n", "application/json");
}

// The model the server answers with, and what it can do.
struct Served {
  std::shared_ptr<models::Model> model;
  std::unique_ptr<tasks::ImageClassifier> classifier;  // image classification folders
  const pio::PerceiverIO* masked_lm = nullptr;          // PerceiverForMaskedLM folders
  std::vector<std::string> endpoints;
};

Served load_served(const ServeArgs& a) {
  Served s;
  const nlohmann::json config = io::read_folder_config(a.model);
  const std::string arch = models::architecture_of(config, a.model + "/config.json");
  const std::vector<std::string> classifiers = tasks::image_classifier_architectures();
  if (std::find(classifiers.begin(), classifiers.end(), arch) != classifiers.end()) {
    try {
      s.classifier = std::make_unique<tasks::ImageClassifier>(tasks::ImageClassifier::load(a.model, {0, 0, "", "serve"}));
      s.model = s.classifier->shared_model();
      s.endpoints.push_back("/v1/classify");
    } catch (const Error& e) {  // e.g. learned positions of another size than the processor's
      std::fprintf(stderr, "perceiver serve: /v1/classify is off: %s\n", e.what());
    }
  }
  if (!s.model) s.model = io::load_model_folder(a.model, config);
  if (auto* p = dynamic_cast<const pio::PerceiverIO*>(s.model.get()); p && p->task() == pio::PerceiverTask::kMaskedLM) {
    s.masked_lm = p;
    s.endpoints.push_back("/v1/fill-mask");
  }
  s.endpoints.push_back("/v1/run");
  check_finite_parameters(*s.model, "serve", a.model, a.common.allow_nonfinite);
  apply_precision(*s.model, a.common);
  s.model->train(false);
  return s;
}

// Waits for a queued request's result; Batcher::QueueFull becomes 503.
models::TensorMap await(Batcher& batcher, std::function<std::future<models::TensorMap>()> submit, int64_t max_queue) {
  std::future<models::TensorMap> f;
  try {
    f = submit();
  } catch (const Batcher::QueueFull&) {
    throw HttpError{503, "the server is busy: " + std::to_string(max_queue) + " requests are already waiting "
                         "(--max-queue " + std::to_string(max_queue) + "); retry later"};
  }
  return f.get();
}

int64_t query_int(const httplib::Request& req, const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  if (!req.has_param(name.c_str())) return fallback;
  const std::string v = req.get_param_value(name.c_str());
  int64_t x = 0;
  try {
    size_t used = 0;
    x = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
  } catch (const std::exception&) {
    throw HttpError{400, "query parameter " + name + ": expected an integer, got '" + v + "'"};
  }
  if (x < lo || x > hi)
    throw HttpError{400, "query parameter " + name + ": expected " + std::to_string(lo) + " to " + std::to_string(hi) +
                             ", got " + v};
  return x;
}

// /v1/classify: the image's pixels go through the batcher with other requests' pixels.
nlohmann::json classify(const ServeArgs& a, const Served& s, Batcher& batcher, const httplib::Request& req) {
  const tasks::ImageClassifier& c = *s.classifier;
  const int64_t top = query_int(req, "top", 5, 1, static_cast<int64_t>(c.labels().size()));
  const std::string& body = req.is_multipart_form_data() ? req.get_file_value("image").content : req.body;
  if (body.empty())
    throw HttpError{400, "expected an image (PNG, JPEG, binary PGM/PPM) as the request body or as the multipart field \"image\""};
  const data::RgbImage image = data::decode_image_rgb(body, "request body", a.max_image_pixels);
  const Tensor pixels = c.pixels({image});
  const models::TensorMap out =
      await(batcher, [&] { return batcher.submit({{c.input_name(), pixels}}, true); }, a.max_queue);
  const Tensor& logits = out.at("logits");
  check_finite("logits", logits, "serve", "the image", "output", a.common.allow_nonfinite);
  nlohmann::json labels = nlohmann::json::array();
  for (const tasks::LabelScore& l : c.top_k(logits, 0, top))
    labels.push_back({{"label", l.label}, {"index", l.index}, {"probability", l.probability}});
  return {{"labels", labels}};
}

// /v1/fill-mask: one request at a time on the worker (each decodes only its masked positions).
nlohmann::json fill_mask(const ServeArgs& a, const Served& s, Batcher& batcher, const httplib::Request& req) {
  nlohmann::json j;
  try {
    j = parse_json(req.body, "request body", "request");
  } catch (const Error& e) {
    throw HttpError{400, e.what()};
  }
  if (!j.is_object() || !j.contains("text") || !j.at("text").is_string())
    throw HttpError{400, "expected a JSON object {\"text\": \"... [MASK] ...\", \"spans\": [[start, end], ...], \"top\": k}"};
  const std::string text = j.at("text").get<std::string>();
  std::vector<tasks::ByteSpan> spans;
  if (j.contains("spans")) {
    if (!j.at("spans").is_array()) throw HttpError{400, "\"spans\": expected an array of [start, end] byte offsets"};
    for (const auto& sp : j.at("spans")) {
      if (!sp.is_array() || sp.size() != 2 || !sp[0].is_number_integer() || !sp[1].is_number_integer())
        throw HttpError{400, "\"spans\": expected [start, end] pairs of integers, got " + sp.dump()};
      spans.push_back({sp[0].get<int64_t>(), sp[1].get<int64_t>()});
    }
  }
  int64_t top = 0;
  if (j.contains("top")) {
    if (!j.at("top").is_number_integer() || j.at("top").get<int64_t>() < 0 || j.at("top").get<int64_t>() > 262)
      throw HttpError{400, "\"top\": expected an integer from 0 to 262, got " + j.at("top").dump()};
    top = j.at("top").get<int64_t>();
  }
  const std::vector<int32_t> content = tasks::masked_content(text, spans);  // errors before queueing
  tasks::FilledMask r;
  await(batcher, [&] {
    return batcher.submit([&]() {
      r = tasks::fill_mask(*s.masked_lm, content, top, a.common.allow_nonfinite, "serve");
      return models::TensorMap{};
    });
  }, a.max_queue);
  nlohmann::json ranked = nlohmann::json::array();
  for (const auto& row : r.top) {
    nlohmann::json l = nlohmann::json::array();
    for (const tasks::TokenScore& t : row) l.push_back({{"id", t.id}, {"token", t.text}, {"probability", t.probability}});
    ranked.push_back(l);
  }
  return {{"text", r.text}, {"positions", r.positions}, {"top", ranked}};
}

// /v1/run: safetensors in, safetensors out.
std::string run(const ServeArgs& a, Batcher& batcher, const httplib::Request& req) {
  const models::TensorMap inputs = io::load_safetensors_bytes(req.body, "request body").tensors;
  if (inputs.empty()) throw HttpError{400, "the request body holds no tensors"};
  check_finite(inputs, "serve", "request body", "input", a.common.allow_nonfinite);
  const models::TensorMap out = await(batcher, [&] { return batcher.submit(inputs, true); }, a.max_queue);
  check_finite(out, "serve", "request body", "output", a.common.allow_nonfinite);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, t] : out) tensors.emplace_back(name, t.clone());  // a batch's rows: dense copies
  return io::safetensors_bytes(tensors, {{"format", "pt"}});
}

// SIGINT and SIGTERM: blocked in every thread started after watch_signals; threads that
// libraries started earlier (OpenBLAS's pool) may still take them, so the handler only writes
// the signal number to a pipe, which one watcher thread reads and then stops the server.
int g_signal_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &b, 1);  // async-signal-safe
}

void watch_signals(httplib::Server& server, std::atomic<bool>& stopping) {
  check(::pipe(g_signal_pipe) == 0, "[serve] cannot create the signal pipe");
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([&server, &stopping]() {
    unsigned char sig = 0;
    while (::read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    std::fprintf(stderr, "perceiver serve: %s: finishing the requests in flight, then stopping\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
    stopping.store(true);
    server.stop();
  }).detach();
}

int serve(const ServeArgs& a) {
  // first: every thread started from here on (OpenMP's, the batcher's, httplib's) inherits the
  // blocked SIGINT/SIGTERM, which only the watcher takes
  std::atomic<bool> stopping{false};
  httplib::Server server;
  watch_signals(server, stopping);
  apply_common_options(a.common);
  // requests of ever new shapes must not keep ever more size classes of cached blocks
  set_cached_memory_limit(static_cast<size_t>(a.max_cached_mib * 1048576.0));
  const int threads = num_threads();
  Served s = load_served(a);
  ServeMetrics metrics;
  Batcher batcher([&s](const models::TensorMap& in) { return s.model->forward(in); }, a.max_batch,
                  std::chrono::microseconds(static_cast<int64_t>(a.batch_wait_ms * 1000.0)), a.max_queue,
                  [&metrics](int64_t n) { metrics.batch(n); }, [threads] { set_num_threads(threads); });
  const size_t http_threads = static_cast<size_t>(a.http_threads);
  server.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  const size_t max_body = static_cast<size_t>(a.max_body_mib * 1048576.0);
  server.set_payload_max_length(max_body);
  // answers go out at once: with Nagle's algorithm a body written after its headers waits for the
  // client's delayed acknowledgement (~40 ms per request on loopback)
  server.set_tcp_nodelay(true);
  server.set_error_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 413) {
      metrics.rejected("body_too_large");
      send_json(res, 413, {{"error", "the request body is larger than the limit of " + std::to_string(max_body) +
                                         " bytes (--max-body-mib " + std::to_string(a.max_body_mib).substr(0, 8) + ")"}});
    } else if (res.body.empty()) {
      send_json(res, res.status, {{"error", "no endpoint " + req.method + " " + req.path + "; see /healthz"}});
    }
  });
  // One wrapper per endpoint: timing, metrics, and errors as JSON with a 4xx/5xx status.
  auto endpoint = [&](const std::string& name, std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    return [&, name, fn](const httplib::Request& req, httplib::Response& res) {
      const auto t0 = Clock::now();
      try {
        fn(req, res);
        if (res.status == -1) res.status = 200;  // httplib sets it after the handler returns
      } catch (const HttpError& e) {
        metrics.rejected(e.status == 503 ? "queue_full" : "bad_request");
        send_json(res, e.status, {{"error", e.message}});
      } catch (const Error& e) {
        metrics.rejected("bad_request");
        send_json(res, 400, {{"error", e.what()}});
      } catch (const std::bad_alloc&) {
        send_json(res, 507, {{"error", "out of memory for this request"}});
      } catch (const std::exception& e) {
        send_json(res, 500, {{"error", std::string("unexpected failure: ") + e.what()}});
      }
      metrics.request(name, res.status, std::chrono::duration<double>(Clock::now() - t0).count());
    };
  };
  server.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    send_json(res, stopping.load() ? 503 : 200, {{"status", stopping.load() ? "stopping" : "ok"},
                                                 {"architecture", s.model->architecture()}, {"endpoints", s.endpoints}});
  });
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.prometheus(batcher.queued()), "text/plain; version=0.0.4");
  });
  server.Post("/v1/run", endpoint("run", [&](const httplib::Request& req, httplib::Response& res) {
    res.set_content(run(a, batcher, req), "application/octet-stream");
  }));
  if (s.classifier)
    server.Post("/v1/classify", endpoint("classify", [&](const httplib::Request& req, httplib::Response& res) {
      send_json(res, 200, classify(a, s, batcher, req));
    }));
  if (s.masked_lm)
    server.Post("/v1/fill-mask", endpoint("fill-mask", [&](const httplib::Request& req, httplib::Response& res) {
      send_json(res, 200, fill_mask(a, s, batcher, req));
    }));

  int port = a.port;
  if (port == 0) {
    port = server.bind_to_any_port(a.host);
    check(port > 0, "[serve] cannot listen on ", a.host, " (any port)");
  } else {
    check(server.bind_to_port(a.host, port), "[serve] cannot listen on ", a.host, ":", port,
          " (in use, or not an address of this machine)");
  }
  std::printf("perceiver serve: %s on http://%s:%d (endpoints:", s.model->architecture().c_str(), a.host.c_str(), port);
  for (const std::string& e : s.endpoints) std::printf(" %s", e.c_str());
  std::printf(", /healthz, /metrics)\n");
  std::fflush(stdout);
  server.listen_after_bind();  // returns after stop(), once the requests in flight are answered
  batcher.stop();
  std::printf("perceiver serve: stopped\n");
  return 0;
}

}  // namespace

Runner add_serve_command(CLI::App& sub) {
  auto a = std::make_shared<ServeArgs>();
  sub.add_option("--model", a->model, "model folder (config.json + weights)")->required()->check(CLI::ExistingDirectory);
  sub.add_option("--host", a->host, "address to listen on (default 127.0.0.1)");
  sub.add_option("--port", a->port, "port (default 8080; 0 picks a free one, printed at start)")->check(CLI::Range(0, 65535));
  sub.add_option("--max-batch", a->max_batch, "most examples per model call (default 8; 1 turns batching off)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  sub.add_option("--batch-wait-ms", a->batch_wait_ms, "longest wait for a batch to fill after its first request "
                 "(default 5)")->check(finite_range(0, 10000));
  sub.add_option("--max-queue", a->max_queue, "most requests waiting for the model; more are answered 503 (default 64)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  sub.add_option("--max-body-mib", a->max_body_mib, "largest request body in MiB; larger are answered 413 (default 16)")
      ->check(finite_range(0.001, 65536));
  sub.add_option("--max-image-pixels", a->max_image_pixels, "refuse images with more pixels (default 16777216)")
      ->check(CLI::Range(int64_t{1}, data::kMaxImageSide * data::kMaxImageSide));
  sub.add_option("--max-cached-mib", a->max_cached_mib, "memory of freed tensors kept for reuse, in MiB (default 512); "
                 "beyond it freed memory goes back to the system")->check(finite_range(0, 1 << 30));
  sub.add_option("--http-threads", a->http_threads, "connections served at once (default 64)")->check(CLI::Range(1, 4096));
  add_common_options(sub, a->common);
  add_precision_option(sub, a->common);
  add_nonfinite_option(sub, a->common.allow_nonfinite);
  return [a]() { return serve(*a); };
}

}  // namespace perceiver::cli
