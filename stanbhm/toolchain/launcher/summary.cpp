// bin/stansummary, bin/diagnose and bin/print for the offline toolchain.
//
// CmdStanPy's `fit.summary()` runs `bin/stansummary --percentiles= 5,50,95
// --sig_figs=N --csv_filename=F chain files...` and reads F; `fit.diagnose()`
// runs `bin/diagnose chain files...` and returns its console text. CmdStan's
// tools compute every statistic with Stan's `stan::mcmc::chainset` (the same
// split rank-normalized ESS and R-hat the rest of Stan uses), and so does this
// one program, so a summary from the offline toolchain carries the numbers
// CmdStan's would. One executable serves all three names (it looks at
// argv[0]); it is compiled once, on first use, by the toolchain's makefile.
#include <stan/io/ends_with.hpp>
#include <stan/io/stan_csv_reader.hpp>
#include <stan/mcmc/chainset.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

// Refusals and unreadable input: printed, and the program exits 1.
struct tool_error : std::runtime_error {
  explicit tool_error(const std::string& m) : std::runtime_error(m) {}
};

bool path_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

bool readable_file(const std::string& p) {
  std::ifstream in(p);
  return in.good();
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// ------------------------------------------------------------ reading

struct chain_files {
  std::vector<stan::io::stan_csv> csvs;
  std::vector<double> warmup_times, sampling_times;
};

// Parses every file; a file without sampling draws is an error (as CmdStan).
chain_files read_chains(const std::vector<std::string>& files,
                        std::ostream* warnings) {
  chain_files out;
  for (const auto& f : files) {
    std::ifstream in(f);
    out.csvs.push_back(stan::io::stan_csv_reader::parse(in, warnings));
    const auto& csv = out.csvs.back();
    if (csv.samples.rows() < 1)
      throw tool_error("No sampling draws found in Stan CSV file: " + f + ".");
    out.warmup_times.push_back(csv.timing.warmup);
    out.sampling_times.push_back(csv.timing.sampling);
  }
  return out;
}

// ------------------------------------------------------------ statistics

// Mean, MCSE, StdDev, MAD, the quantiles, ESS_bulk, ESS_tail, R_hat: the
// columns of CmdStan's summary, R_hat being the larger of bulk and tail.
std::vector<double> column_stats(const stan::mcmc::chainset& ch, int col,
                                 const Eigen::VectorXd& probs) {
  std::vector<double> row{ch.mean(col), ch.mcse_mean(col), ch.sd(col),
                          ch.med_abs_deviation(col)};
  Eigen::VectorXd q = ch.quantiles(col, probs);
  row.insert(row.end(), q.data(), q.data() + q.size());
  auto ess = ch.split_rank_normalized_ess(col);
  auto rhat = ch.split_rank_normalized_rhat(col);
  row.push_back(ess.first);
  row.push_back(ess.second);
  row.push_back(std::max(rhat.first, rhat.second));
  return row;
}

// Element indices parsed from "name[i,j]"; empty for a scalar.
std::vector<int> indices_of(const std::string& name) {
  std::vector<int> idx;
  auto open = name.find('[');
  if (open == std::string::npos)
    return idx;
  std::stringstream ss(name.substr(open + 1));
  int v;
  char sep;
  while (ss >> v) {
    idx.push_back(v);
    if (!(ss >> sep) || sep == ']')
      break;
  }
  return idx;
}

std::string base_name(const std::string& name) {
  return name.substr(0, name.find('['));
}

// Model columns in the order CmdStan reports them: Stan CSV lists a
// container's elements in column-major order (first index fastest), the
// summary in row-major order (last index fastest): `m[1,1], m[1,2], m[2,1]`.
// Scalars stay where they are.
std::vector<int> report_order(const stan::mcmc::chainset& ch, int first) {
  std::vector<int> order;
  int n = ch.num_params();
  for (int i = first; i < n;) {
    std::string base = base_name(ch.param_name(i));
    int end = i + 1;
    if (ch.param_name(i).find('[') != std::string::npos)
      while (end < n && base_name(ch.param_name(end)) == base)
        ++end;
    std::vector<int> block;
    for (int j = i; j < end; ++j)
      block.push_back(j);
    std::stable_sort(block.begin(), block.end(), [&](int a, int b) {
      return indices_of(ch.param_name(a)) < indices_of(ch.param_name(b));
    });
    order.insert(order.end(), block.begin(), block.end());
    i = end;
  }
  return order;
}

// ------------------------------------------------------------ formatting

// Digits needed to show `v` with `sig` significant figures in fixed notation:
// (width, decimals).
std::pair<int, int> fixed_layout(double v, int sig) {
  double a = std::fabs(v);
  int width, decimals;
  if (v == 0) {
    width = decimals = sig;
  } else if (std::isnan(v)) {
    width = 3;
    decimals = sig;
  } else if (a >= 1) {
    int whole = static_cast<int>(std::ceil(std::log10(a) + 1e-6));
    width = whole >= sig ? whole : sig + 1;
    decimals = whole >= sig ? 0 : sig - whole;
  } else {
    int zeros = static_cast<int>(std::fabs(std::floor(std::log10(a))));
    width = 1 + zeros + sig;
    decimals = zeros + sig - 1;
  }
  if (std::signbit(v))
    ++width;
  return {width, decimals};
}

// A column is printed in fixed notation when every value fits in a narrow
// field, otherwise in scientific notation.
struct column_format {
  bool scientific = false;
  int width = 0;
};

column_format choose_format(const std::vector<std::vector<double>>& rows,
                            size_t col, const std::string& label, int sig) {
  const int padding = 2, fixed_limit = 8;
  int widest = 0;
  bool negative = false;
  for (const auto& r : rows) {
    widest = std::max(widest, fixed_layout(r[col], sig).first);
    negative = negative || r[col] < 0;
  }
  column_format f;
  if (widest + padding < fixed_limit) {
    f.width = std::max<int>(widest, label.size()) + padding;
    return f;
  }
  f.scientific = true;
  int sci = sig + 1 + 4 + (negative ? 1 : 0);
  f.width = std::max<int>(sci, label.size()) + padding;
  return f;
}

std::string format_value(double v, const column_format& f, int sig) {
  std::ostringstream os;
  if (f.scientific)
    os << std::scientific << std::setprecision(sig - 1) << v;
  else
    os << std::fixed << std::setprecision(fixed_layout(v, sig).second) << v;
  return os.str();
}

// Seconds in a readable unit, e.g. "0.25 seconds" or "1.5 minutes".
std::pair<double, std::string> in_unit(double seconds) {
  if (seconds / 3600 > 1)
    return {seconds / 3600, "hours"};
  if (seconds / 60 > 1)
    return {seconds / 60, "minutes"};
  return {seconds, "seconds"};
}

std::string two_sig(double v) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(fixed_layout(v, 2).second) << v;
  return os.str();
}

void write_timing(std::ostream& out, const std::string& prefix,
                  const stan::mcmc::chainset& ch, const chain_files& cf) {
  const auto& md = cf.csvs.front().metadata;
  out << prefix << "Inference for Stan model: " << md.model << "\n"
      << prefix << ch.num_chains() << " chains: each with iter="
      << md.num_samples << "; warmup=" << md.num_warmup
      << "; thin=" << md.thin << "; " << ch.num_samples()
      << " iterations saved.\n"
      << prefix << "\n";
  auto line = [&](const char* what, const std::vector<double>& times) {
    double total = 0;
    for (double t : times)
      total += t;
    auto [amount, unit] = in_unit(total);
    out << prefix << what << " took ";
    if (times.size() == 1) {
      out << two_sig(amount) << " " << unit << "\n";
      return;
    }
    out << "(";
    for (size_t i = 0; i < times.size(); ++i)
      out << (i ? ", " : "") << two_sig(times[i]);
    out << ") seconds, " << two_sig(amount) << " " << unit << " total\n";
  };
  line("Warmup", cf.warmup_times);
  line("Sampling", cf.sampling_times);
}

void write_footer(std::ostream& out, const std::string& prefix,
                  const stan::io::stan_csv_metadata& md) {
  out << prefix << "Samples were drawn using " << md.algorithm << " with "
      << md.engine << ".\n"
      << prefix
      << "For each parameter, ESS_bulk and ESS_tail measure the effective "
         "sample size for the entire sample (bulk) and for the .05 and .95 "
         "tails (tail), \n"
      << prefix
      << "and R_hat measures the potential scale reduction on split chains. "
         "At convergence R_hat will be very close to 1.00.\n";
}

// ------------------------------------------------------------ stansummary

const char* summary_usage = R"(Usage: stansummary [OPTIONS] stan_csv_file(s)
Report statistics for one or more Stan csv files from a HMC sampler run.
Example:  stansummary model_chain_1.csv model_chain_2.csv
Options:
  -a, --autocorr [n]          Display the chain autocorrelation for the n-th
                              input file, in addition to statistics.
  -c, --csv_filename [file]   Write statistics to a csv file.
  -h, --help                  Produce help message, then exit.
  -p, --percentiles [values]  Percentiles to report as ordered set of
                              comma-separated numbers from (0.0,100.0), inclusive.
                              Default is 5,50,95.
  -s, --sig_figs [n]          Significant figures reported. Default is 2.
                              Must be an integer from (1, 18), inclusive.
  -i, --include_param [name]  Include the named parameter in the summary output.
                              By default, all parameters in the file are summarized,
                              passing this argument one or more times will filter
                              the output down to just the requested arguments.
)";

struct summary_options {
  int sig_figs = 2;
  bool sig_figs_given = false;
  int autocorr = 0;  // 1-based file index; 0 = none
  std::string csv_filename;
  std::string percentiles = "5,50,95";
  std::vector<std::string> include;
  std::vector<std::string> files;
  bool help = false;
};

int parse_int(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0')
    throw tool_error(opt + ": " + v + " is not an integer");
  return static_cast<int>(n);
}

// "theta.1" and "theta[1]" both name the element theta[1].
std::string pretty_name(std::string name) {
  stan::io::prettify_stan_csv_name(name);
  return name;
}

summary_options parse_summary_args(int argc, const char* argv[]) {
  summary_options o;
  for (int i = 1; i < argc; ++i) {
    std::string tok = argv[i];
    if (tok.size() < 2 || tok[0] != '-') {
      o.files.push_back(tok);
      continue;
    }
    std::string key = tok, value;
    bool has_value = false;
    auto eq = tok.find('=');
    if (tok.compare(0, 2, "--") == 0 && eq != std::string::npos) {
      key = tok.substr(0, eq);
      value = tok.substr(eq + 1);
      has_value = true;
    }
    static const std::set<std::string> known
        = {"-a", "--autocorr", "-c", "--csv_filename", "-p", "--percentiles",
           "-s", "--sig_figs", "-i", "--include_param", "-h", "--help"};
    if (!known.count(key))
      throw tool_error("The following argument was not expected: " + tok);
    if (key == "-h" || key == "--help") {
      o.help = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc)
        throw tool_error(key + " requires a value");
      value = argv[++i];
    }
    if (key == "-s" || key == "--sig_figs") {
      o.sig_figs = parse_int("--sig_figs", trim(value));
      o.sig_figs_given = true;
      if (o.sig_figs < 1 || o.sig_figs > 18)
        throw tool_error("--sig_figs: Value " + trim(value)
                         + " not in range [1 - 18]");
    } else if (key == "-a" || key == "--autocorr") {
      o.autocorr = parse_int("--autocorr", trim(value));
      if (o.autocorr < 1)
        throw tool_error("--autocorr: Value " + trim(value)
                         + " should be a positive number");
    } else if (key == "-c" || key == "--csv_filename") {
      o.csv_filename = value;
    } else if (key == "-p" || key == "--percentiles") {
      o.percentiles = value;
    } else {
      o.include.push_back(pretty_name(value));
    }
  }
  return o;
}

// "5, 50,95" -> labels {"5","50","95"} and probabilities; strictly ordered
// values in [0, 100], as CmdStan requires.
std::vector<std::string> split_percentiles(const std::string& spec,
                                           Eigen::VectorXd& probs) {
  std::vector<std::string> labels;
  std::string cur;
  for (char ch : spec + ",") {
    if (ch == ',' || ch == ' ') {
      if (!cur.empty())
        labels.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  probs.resize(labels.size());
  double prev = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    char* end = nullptr;
    double p = std::strtod(labels[i].c_str(), &end);
    if (*end != '\0' || !std::isfinite(p) || p < 0 || p > 100 || p < prev)
      throw tool_error("Option --percentiles " + trim(spec)
                       + ": values must be in range (0, 100), inclusive, and "
                         "strictly increasing.");
    prev = p;
    probs[i] = p / 100.0;
  }
  return labels;
}

struct summary_table {
  std::vector<std::string> header;  // statistic labels
  std::vector<std::string> names;   // one per row
  std::vector<std::vector<double>> rows;
  size_t lp_rows = 0, sampler_rows = 0;  // blocks, for the console layout
};

summary_table build_table(const stan::mcmc::chainset& ch,
                          const std::vector<std::string>& labels,
                          const Eigen::VectorXd& probs,
                          const std::vector<std::string>& include) {
  summary_table t;
  t.header = {"Mean", "MCSE", "StdDev", "MAD"};
  for (const auto& l : labels)
    t.header.push_back(l + "%");
  for (const char* s : {"ESS_bulk", "ESS_tail", "R_hat"})
    t.header.push_back(s);

  // Stan CSV puts lp__ first, then the sampler's `__` columns, then the
  // model's; the summary keeps that order.
  int n = ch.num_params();
  int n_sampler = 0;
  for (int i = 0; i < n; ++i)
    if (stan::io::ends_with("__", ch.param_name(i)))
      ++n_sampler;
  if (n_sampler > 0)
    --n_sampler;  // lp__
  auto add = [&](int col) {
    t.names.push_back(ch.param_name(col));
    t.rows.push_back(column_stats(ch, col, probs));
  };
  add(0);
  t.lp_rows = 1;
  for (int i = 1; i <= n_sampler; ++i)
    add(i);
  t.sampler_rows = n_sampler;
  int first_model = n_sampler + 1;
  if (include.empty()) {
    for (int col : report_order(ch, first_model))
      add(col);
    return t;
  }
  std::set<std::string> wanted(include.begin(), include.end());
  for (int i = first_model; i < n; ++i)
    if (wanted.erase(ch.param_name(i)))
      add(i);
  if (!wanted.empty()) {
    std::string msg = "--include_param: Unrecognized parameter(s): ";
    for (const auto& w : wanted)
      msg += "'" + w + "' ";
    throw tool_error(msg);
  }
  return t;
}

void print_console(const summary_table& t, int sig) {
  size_t name_w = 0;
  for (const auto& nm : t.names)
    name_w = std::max(name_w, nm.size());
  // Sampler rows and model rows are sized separately, then share the wider.
  std::vector<std::vector<double>> sampler(
      t.rows.begin() + t.lp_rows, t.rows.begin() + t.lp_rows + t.sampler_rows);
  std::vector<std::vector<double>> model(
      t.rows.begin() + t.lp_rows + t.sampler_rows, t.rows.end());
  std::vector<column_format> fmt_s, fmt_m;
  std::vector<int> width;
  for (size_t j = 0; j < t.header.size(); ++j) {
    fmt_s.push_back(choose_format(sampler, j, t.header[j], sig));
    fmt_m.push_back(choose_format(model, j, t.header[j], sig));
    width.push_back(std::max(fmt_s[j].width, fmt_m[j].width));
  }
  std::cout << std::string(name_w + 1, ' ');
  for (size_t j = 0; j < t.header.size(); ++j)
    std::cout << std::setw(width[j]) << t.header[j];
  std::cout << "\n\n";
  for (size_t i = 0; i < t.rows.size(); ++i) {
    bool is_sampler = i >= t.lp_rows && i < t.lp_rows + t.sampler_rows;
    if (i == t.lp_rows + t.sampler_rows)
      std::cout << "\n";
    std::cout << std::left << std::setw(name_w + 1) << t.names[i] << std::right;
    for (size_t j = 0; j < t.header.size(); ++j)
      std::cout << std::setw(width[j])
                << format_value(t.rows[i][j], is_sampler ? fmt_s[j] : fmt_m[j],
                                sig);
    std::cout << "\n";
  }
  std::cout << "\n";
}

// The CSV CmdStanPy reads: a `name` column, then the statistics, with
// sig_figs significant digits when given (6 otherwise); timing and sampler
// notes follow as `#` comments. Written beside the target and renamed into
// place, so a reader never sees a partial table.
void write_csv(const summary_table& t, const std::string& path,
               const summary_options& o, const stan::mcmc::chainset& ch,
               const chain_files& cf) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    if (!out.good())
      throw tool_error("Cannot save to csv_filename: " + path + ".");
    out << std::setprecision(o.sig_figs_given ? o.sig_figs : 6);
    out << "name";
    for (const auto& h : t.header)
      out << "," << h;
    out << "\n";
    for (size_t i = 0; i < t.rows.size(); ++i) {
      out << "\"" << t.names[i] << "\"";
      for (double v : t.rows[i])
        out << "," << v;
      out << "\n";
    }
    write_timing(out, "# ", ch, cf);
    write_footer(out, "# ", cf.csvs.front().metadata);
    out.flush();
    if (!out.good())
      throw tool_error("Cannot save to csv_filename: " + path + ".");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw tool_error("Cannot save to csv_filename: " + path + ".");
  }
}

void print_autocorrelation(const stan::mcmc::chainset& ch, int chain,
                           size_t name_w) {
  int n_lags = ch.num_samples();
  std::cout << "Displaying the autocorrelations for chain " << chain << ":\n\n";
  int lag_w = std::max<int>(4, std::to_string(n_lags).size() + 1);
  std::vector<Eigen::VectorXd> ac;
  std::cout << std::setw(lag_w) << "Lag";
  for (int i = 0; i < ch.num_params(); ++i) {
    ac.push_back(ch.autocorrelation(chain - 1, i));
    std::cout << std::setw(name_w + 1) << ch.param_name(i);
  }
  std::cout << "\n";
  for (int lag = 0; lag < n_lags; ++lag) {
    std::cout << std::setw(lag_w) << lag;
    for (const auto& v : ac)
      std::cout << std::setw(name_w + 1) << v[lag];
    std::cout << "\n";
  }
  std::cout << "\n";
}

int stansummary(int argc, const char* argv[]) {
  if (argc < 2) {
    std::cout << summary_usage << std::endl;
    return 1;
  }
  summary_options o = parse_summary_args(argc, argv);
  if (o.help) {
    std::cout << summary_usage << std::endl;
    return 0;
  }
  if (o.files.empty())
    throw tool_error("input_files is required");
  for (const auto& f : o.files)
    if (!readable_file(f))
      throw tool_error("Cannot read input csv file: " + f + ".");
  if (o.autocorr > static_cast<int>(o.files.size()))
    throw tool_error("Option --autocorr: " + std::to_string(o.autocorr)
                     + " not a valid chain id.");
  if (!o.csv_filename.empty() && path_exists(o.csv_filename))
    throw tool_error("--csv_filename: Path already exists: " + o.csv_filename);
  Eigen::VectorXd probs;
  auto labels = split_percentiles(trim(o.percentiles), probs);

  chain_files cf = read_chains(o.files, &std::cout);
  stan::mcmc::chainset ch(cf.csvs);
  summary_table t = build_table(ch, labels, probs, o.include);

  write_timing(std::cout, "", ch, cf);
  std::cout << "\n";
  print_console(t, o.sig_figs);
  write_footer(std::cout, "", cf.csvs.front().metadata);
  if (o.autocorr > 0) {
    size_t name_w = 0;
    for (int i = 0; i < ch.num_params(); ++i)
      name_w = std::max(name_w, ch.param_name(i).size());
    print_autocorrelation(ch, o.autocorr, name_w);
  }
  if (!o.csv_filename.empty())
    write_csv(t, o.csv_filename, o, ch, cf);
  return 0;
}

// ------------------------------------------------------------ diagnose

// CmdStan's checks, thresholds and wording: tree depth saturation,
// divergences, E-BFMI below 0.3, fewer than 0.001 effective draws per
// transition, and rank-normalized split R-hat above 1.01 (rounded).
int diagnose(int argc, const char* argv[]) {
  if (argc == 1) {
    std::cout << "USAGE:  diagnose <filename 1> [<filename 2> ... <filename "
                 "N>]\n"
              << std::endl;
    return 0;
  }
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (readable_file(argv[i]))
      files.push_back(argv[i]);
    else
      std::cout << "File " << argv[i] << " not found" << std::endl;
  }
  if (files.empty()) {
    std::cout << "No valid input files, exiting." << std::endl;
    return 1;
  }
  std::vector<stan::io::stan_csv> csvs;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream warnings;
    try {
      csvs.push_back(stan::io::stan_csv_reader::parse(in, &warnings));
      if (!warnings.str().empty())
        throw std::invalid_argument(warnings.str());
    } catch (const std::invalid_argument& e) {
      std::cout << "Cannot parse input csv file: " << f << e.what() << "."
                << std::endl;
      return 1;
    }
  }
  const double rhat_max = 1.01499;  // shown as 1.01
  stan::mcmc::chainset ch(csvs);
  const auto& md = csvs.front().metadata;
  long total = ch.num_samples();
  bool problems = false;
  std::vector<std::string> low_ess, high_rhat;
  std::cout << std::fixed << std::setprecision(2);
  for (int i = 0; i < ch.num_params(); ++i) {
    const std::string& name = ch.param_name(i);
    Eigen::MatrixXd draws = ch.samples(i);
    if (name == "treedepth__") {
      std::cout << "Checking sampler transitions treedepth.\n";
      long hits = (draws.array() >= md.max_depth).count();
      if (hits > 0) {
        problems = true;
        std::cout << hits << " of " << total << " (" << 100.0 * hits / total
                  << "%) transitions hit the maximum treedepth limit of "
                  << md.max_depth << ", or 2^" << md.max_depth
                  << " leapfrog steps.\n"
                  << "Trajectories that are prematurely terminated due to "
                     "this limit will result in slow exploration.\n"
                  << "For optimal performance, increase this limit.\n\n";
      } else {
        std::cout << "Treedepth satisfactory for all transitions.\n\n";
      }
    } else if (name == "divergent__") {
      std::cout << "Checking sampler transitions for divergences.\n";
      long div = static_cast<long>(draws.sum());
      if (div > 0) {
        problems = true;
        std::cout << div << " of " << total << " (" << 100.0 * div / total
                  << "%) transitions ended with a divergence.\n"
                  << "These divergent transitions indicate that HMC is not "
                     "fully able to explore the posterior distribution.\n"
                  << "Try increasing adapt delta closer to 1.\n"
                  << "If this doesn't remove all divergences, try to "
                     "reparameterize the model.\n\n";
      } else {
        std::cout << "No divergent transitions found.\n\n";
      }
    } else if (name == "energy__") {
      std::cout << "Checking E-BFMI - sampler transitions HMC potential "
                   "energy.\n";
      // Mean squared change of energy between successive draws (chains laid
      // end to end, as CmdStan does) over the variance of the energy.
      Eigen::Map<Eigen::VectorXd> e(draws.data(), draws.size());
      double mean_sq_step = 0;
      for (long k = 1; k < e.size(); ++k) {
        double step = e(k) - e(k - 1);
        mean_sq_step += (step * step - mean_sq_step) / k;
      }
      double bfmi = mean_sq_step / ch.variance(i);
      if (bfmi < 0.3) {
        problems = true;
        std::cout << "The E-BFMI, " << bfmi << ", is below the nominal "
                  << "threshold of " << 0.3 << " which suggests that HMC may "
                  << "have trouble exploring the target distribution.\n"
                  << "If possible, try to reparameterize the model.\n\n";
      } else {
        std::cout << "E-BFMI satisfactory.\n\n";
      }
    } else if (name.find("__") == std::string::npos) {
      auto ess = ch.split_rank_normalized_ess(i);
      if (std::min(ess.first, ess.second) / total < 0.001)
        low_ess.push_back(name);
      auto rhat = ch.split_rank_normalized_rhat(i);
      if (std::max(rhat.first, rhat.second) > rhat_max)
        high_rhat.push_back(name);
    }
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t k = 0; k < v.size(); ++k)
      s += (k ? ", " : "") + v[k];
    return s;
  };
  if (!low_ess.empty()) {
    problems = true;
    std::cout << "The following parameters had fewer than 0.001 effective "
                 "draws per transition:\n  "
              << join(low_ess) << "\n"
              << "Such low values indicate that the effective sample size "
                 "estimators may be biased high and actual performance may "
                 "be substantially lower than quoted.\n\n";
  } else {
    std::cout << "Rank-normalized split effective sample size satisfactory "
                 "for all parameters.\n\n";
  }
  if (!high_rhat.empty()) {
    problems = true;
    std::cout << "The following parameters had rank-normalized split R-hat "
                 "greater than "
              << rhat_max << ":\n  " << join(high_rhat) << "\n"
              << "Such high values indicate incomplete mixing and biased "
                 "estimation.\n"
              << "You should consider regularizating your model with "
                 "additional prior information or a more effective "
                 "parameterization.\n\n";
  } else {
    std::cout << "Rank-normalized split R-hat values satisfactory for all "
                 "parameters.\n\n";
  }
  std::cout << (problems ? "Processing complete.\n"
                         : "Processing complete, no problems detected.\n")
            << std::flush;
  return 0;
}

// ------------------------------------------------------------ print

// CmdStan keeps `print` only as a deprecated alias of stansummary; so does
// this one, with the same notice.
int print(int argc, const char* argv[]) {
  std::cout << "print is deprecated and will be removed in a future release; "
               "use stansummary instead.\n"
            << std::endl;
  if (argc == 1) {
    std::cout << summary_usage << std::endl;
    return 0;
  }
  return stansummary(argc, argv);
}

}  // namespace

int main(int argc, const char* argv[]) {
  std::string self = argv[0];
  auto slash = self.find_last_of('/');
  if (slash != std::string::npos)
    self = self.substr(slash + 1);
  try {
    if (self == "diagnose")
      return diagnose(argc, argv);
    if (self == "print")
      return print(argc, argv);
    return stansummary(argc, argv);
  } catch (const tool_error& e) {
    std::cout << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cout << "Error during processing. " << e.what() << std::endl;
    return 1;
  }
}
