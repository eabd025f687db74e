// Prometheus text exposition of the server's counters (see serve_metrics.h).
#include "serve_metrics.h"

#include <cstdio>

namespace perceiver::cli {
namespace {

const std::vector<double> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

void ServeMetrics::Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++count;
}

void ServeMetrics::Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + number(bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(count) + "\n";
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(sum) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count) + "\n";
}

void ServeMetrics::request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
  latency_.try_emplace(endpoint, kLatencyBounds).first->second.observe(seconds);
}

void ServeMetrics::batch(int64_t examples) {
  std::lock_guard<std::mutex> lock(mu_);
  batches_.observe(static_cast<double>(examples));
}

void ServeMetrics::rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

std::string ServeMetrics::prometheus(int64_t queue_length) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP perceiver_requests_total Requests answered, by endpoint and HTTP status code.\n";
  out += "# TYPE perceiver_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += "perceiver_requests_total{endpoint=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  out += "# HELP perceiver_request_duration_seconds Time from a request's arrival to its answer.\n";
  out += "# TYPE perceiver_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : latency_)
    h.write(out, "perceiver_request_duration_seconds", "endpoint=\"" + endpoint + "\"");
  out += "# HELP perceiver_batch_size Examples per model call (dynamic batching).\n";
  out += "# TYPE perceiver_batch_size histogram\n";
  batches_.write(out, "perceiver_batch_size", "");
  out += "# HELP perceiver_rejected_total Requests refused before the model ran, by reason.\n";
  out += "# TYPE perceiver_rejected_total counter\n";
  for (const auto& [reason, n] : rejected_)
    out += "perceiver_rejected_total{reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  out += "# HELP perceiver_queue_length Requests waiting for the model.\n";
  out += "# TYPE perceiver_queue_length gauge\n";
  out += "perceiver_queue_length " + std::to_string(queue_length) + "\n";
  return out;
}

}  // namespace perceiver::cli
