// The launcher's Stan CSV writer.
//
// Stan's unique_stream_writer formats every draw through a fresh
// std::stringstream (locale look-ups, a heap buffer, printf underneath). For a
// small model that is most of a sampling iteration: measured on a 2-parameter
// model, 13 of 20 microseconds per draw went to formatting 9 numbers. This
// writer produces the same bytes -- `%.<precision>g`, which is what an ostream
// with the default float field writes -- with std::to_chars into one reused
// buffer, so a draw costs what its numbers cost and nothing more.
#ifndef STANBHM_LAUNCHER_CSV_WRITER_HPP
#define STANBHM_LAUNCHER_CSV_WRITER_HPP

#include <stan/callbacks/writer.hpp>
#include <stan/math/prim/fun/Eigen.hpp>

#include <charconv>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace stanbhm {

class csv_writer final : public stan::callbacks::writer {
 public:
  csv_writer() = default;
  csv_writer(std::unique_ptr<std::ofstream>&& output, std::string comment_prefix)
      : output_(std::move(output)), prefix_(std::move(comment_prefix)) {}
  csv_writer(csv_writer&& other) = default;
  csv_writer(const csv_writer&) = delete;

  void operator()(const std::vector<std::string>& names) override {
    if (output_ == nullptr || names.empty())
      return;
    line_.clear();
    for (const auto& name : names) {
      line_ += name;
      line_ += ',';
    }
    line_.back() = '\n';
    flush_line();
  }

  void operator()(const std::vector<double>& values) override {
    if (output_ == nullptr || values.empty())
      return;
    // The precision is read on every call: the stream's is what the caller set.
    const int precision = static_cast<int>(output_->precision());
    line_.clear();
    for (double v : values) {
      char buf[64];
      auto end = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general,
                               precision).ptr;
      line_.append(buf, end);
      line_ += ',';
    }
    line_.back() = '\n';
    flush_line();
  }

  // A matrix holds parameters in rows and draws in columns: one line per draw.
  void operator()(const Eigen::Matrix<double, -1, -1>& values) override {
    if (output_ != nullptr)
      *output_ << values.transpose().format(format_);
  }
  void operator()(const Eigen::Matrix<double, -1, 1>& values) override {
    if (output_ != nullptr)
      *output_ << values.transpose().format(format_);
  }
  void operator()(const Eigen::Matrix<double, 1, -1>& values) override {
    if (output_ != nullptr)
      *output_ << values.format(format_);
  }

  void operator()() override {
    if (output_ != nullptr)
      *output_ << prefix_ << '\n';
  }

  void operator()(const std::string& message) override {
    if (output_ != nullptr)
      *output_ << prefix_ << message << '\n';
  }

  bool is_valid() const noexcept override {
    return output_ != nullptr && output_->good();
  }

 private:
  void flush_line() { output_->write(line_.data(), static_cast<std::streamsize>(line_.size())); }

  // Eigen rows as Stan's writer prints them: ", " between values, a newline after.
  Eigen::IOFormat format_{Eigen::StreamPrecision, Eigen::DontAlignCols, ", ", "", "", "\n",
                          "", ""};
  std::unique_ptr<std::ofstream> output_;
  std::string prefix_;
  std::string line_;
};

}  // namespace stanbhm

#endif
