// The counters of `perceiver serve`, written in the Prometheus text format at /metrics:
// requests by endpoint and status code, request latency and batch size histograms, rejected
// requests by reason, and the queue length. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace perceiver::cli {

class ServeMetrics {
 public:
  void request(const std::string& endpoint, int status, double seconds);
  void batch(int64_t examples);
  void rejected(const std::string& reason);  // "queue_full", "body_too_large", "bad_request", ...
  std::string prometheus(int64_t queue_length) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bound, not cumulative; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
    explicit Histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
    void observe(double v);
    void write(std::string& out, const std::string& name, const std::string& labels) const;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // per endpoint
  Histogram batches_{{1, 2, 4, 8, 16, 32, 64, 128}};
  std::map<std::string, uint64_t> rejected_;
};

}  // namespace perceiver::cli
