// The configuration block that heads every CmdStan output file.
//
// CmdStanPy reads run settings back from these `key = value` comment lines
// (num_samples, thin, save_warmup, metric, max_depth, algorithm, ...), so the
// block mirrors CmdStan's layout: the argument tree indented two spaces a
// level, with "(Default)" after values the user did not give.
#ifndef STANBHM_LAUNCHER_CONFIG_HPP
#define STANBHM_LAUNCHER_CONFIG_HPP

#include "args.hpp"

#include <string>
#include <vector>

namespace stanbhm {

class config {
 public:
  explicit config(const args& a) : a_(a) {}

  void section(int depth, const std::string& name) {
    lines_.push_back(indent(depth) + name);
  }

  // A value taken from argument `key` (shown as `label`), or its default.
  void value(int depth, const std::string& label, const std::string& key,
             const std::string& dflt) {
    bool given = a_.given(key);
    add(depth, label, given ? a_.str(key, dflt) : dflt, given);
  }

  void flag(int depth, const std::string& label, const std::string& key,
            bool dflt) {
    bool given = a_.given(key);
    add(depth, label, a_.boolean(key, dflt) ? "true" : "false", given);
  }

  // A value the launcher decided (e.g. the seed actually used).
  void fixed(int depth, const std::string& label, const std::string& v,
             bool given) {
    add(depth, label, v, given);
  }

  const std::vector<std::string>& lines() const { return lines_; }

 private:
  const args& a_;
  std::vector<std::string> lines_;

  static std::string indent(int depth) { return std::string(2 * depth, ' '); }

  void add(int depth, const std::string& label, const std::string& v,
           bool given) {
    lines_.push_back(indent(depth) + label + " = " + v
                     + (given ? "" : " (Default)"));
  }
};

}  // namespace stanbhm

#endif
