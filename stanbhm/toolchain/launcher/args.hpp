// Command-line arguments in CmdStan's grammar.
//
// CmdStan arguments are a tree written flat: bare words open a section
// (`data`, `output`, `adapt`, `random`) and `key=value` pairs fill it. Only two
// keys are ambiguous across sections (`file`, and `engaged`/`iter` inside
// `adapt`), so the parser qualifies those and keeps every other key flat. The
// set of keys each method accepts is explicit: anything else is refused with a
// message naming it, never silently ignored.
#ifndef STANBHM_LAUNCHER_ARGS_HPP
#define STANBHM_LAUNCHER_ARGS_HPP

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace stanbhm {

struct usage_error : public std::runtime_error {
  explicit usage_error(const std::string& msg) : std::runtime_error(msg) {}
};

class args {
 public:
  std::string method = "sample";
  bool method_given = false;
  // `help` / `help-all` anywhere on the line: the section it follows ("" at
  // the top) is the help topic, and the rest of the line is not parsed (as in
  // CmdStan).
  bool help = false;
  bool help_all = false;
  std::string help_topic;

  args(int argc, const char* argv[]) {
    static const std::set<std::string> methods
        = {"sample",     "optimize", "variational",         "pathfinder",
           "laplace",    "log_prob", "generate_quantities", "diagnose"};
    static const std::set<std::string> sections
        = {"data",     "output",      "adapt",    "random", "opencl",
           "hmc",      "nuts",        "static",   "fixed_param", "lbfgs",
           "bfgs",     "newton",      "meanfield", "fullrank", "test",
           "gradient"};
    std::string ctx;
    for (int i = 1; i < argc; ++i) {
      std::string tok(argv[i]);
      auto eq = tok.find('=');
      if (tok == "help" || tok == "help-all") {
        help = true;
        help_all = tok == "help-all";
        help_topic = ctx;
        return;
      }
      if (eq == std::string::npos) {
        if (methods.count(tok)) {
          set_method(tok);
          ctx = tok;
        } else if (sections.count(tok)) {
          ctx = tok;
        } else {
          throw usage_error("unrecognized argument '" + tok + "'");
        }
        continue;
      }
      std::string key = tok.substr(0, eq);
      std::string value = tok.substr(eq + 1);
      if (key == "method") {
        if (!methods.count(value))
          throw usage_error("unknown method '" + value + "'");
        set_method(value);
        ctx = value;
        continue;
      }
      if (key == "file") {
        if (ctx != "data" && ctx != "output")
          throw usage_error("'file=' must follow 'data' or 'output'");
        key = ctx + ".file";
      } else if (ctx == "adapt" && (key == "engaged" || key == "iter")) {
        key = "adapt." + key;
      } else if (key == "engaged") {
        key = "adapt.engaged";
      }
      if (values_.count(key))
        throw usage_error("argument '" + key + "' given twice");
      values_[key] = value;
    }
    if (!method_given)
      throw usage_error(
          "a method must be specified (sample, optimize, variational, "
          "pathfinder, laplace, generate_quantities, log_prob or diagnose)");
  }

  // Refuse any key the chosen method does not implement.
  void allow_only(const std::set<std::string>& allowed) const {
    for (const auto& kv : values_) {
      if (!allowed.count(kv.first))
        throw usage_error("argument '" + kv.first
                          + "' is not supported with method=" + method);
    }
  }

  bool given(const std::string& key) const { return values_.count(key) > 0; }

  std::string str(const std::string& key, const std::string& dflt) const {
    auto it = values_.find(key);
    return it == values_.end() ? dflt : it->second;
  }

  double real(const std::string& key, double dflt) const {
    auto it = values_.find(key);
    if (it == values_.end())
      return dflt;
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0')
      throw usage_error("argument '" + key + "' must be a number, got '"
                        + it->second + "'");
    return v;
  }

  // An integer argument. Values that do not fit CmdStan's `int` are refused
  // rather than wrapped, so `thin=4294967297` is an error and not `thin=1`.
  long long integer(const std::string& key, long long dflt,
                    long long lo = INT_MIN, long long hi = INT_MAX) const {
    auto it = values_.find(key);
    if (it == values_.end())
      return dflt;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0')
      throw usage_error("argument '" + key + "' must be an integer, got '"
                        + it->second + "'");
    if (errno == ERANGE || v < lo || v > hi)
      throw usage_error("argument '" + key + "' is out of range, got '"
                        + it->second + "'");
    return v;
  }

  bool boolean(const std::string& key, bool dflt) const {
    auto it = values_.find(key);
    if (it == values_.end())
      return dflt;
    const std::string& v = it->second;
    if (v == "1" || v == "true")
      return true;
    if (v == "0" || v == "false")
      return false;
    throw usage_error("argument '" + key + "' must be 0/1/true/false, got '"
                      + v + "'");
  }

 private:
  std::map<std::string, std::string> values_;

  void set_method(const std::string& m) {
    if (method_given && m != method)
      throw usage_error("two methods given: '" + method + "' and '" + m + "'");
    method = m;
    method_given = true;
  }
};

}  // namespace stanbhm

#endif
