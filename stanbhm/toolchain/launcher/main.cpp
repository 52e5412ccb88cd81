// stanbhm's CmdStan-compatible launcher.
//
// CmdStan itself cannot be downloaded on the machines stanbhm targets, but the
// httpstan wheel carries stanc and every Stan header. This file is the `main`
// that CmdStan would provide: it reads CmdStan's command line, writes Stan CSV
// the way CmdStanPy reads it, and calls the same `stan::services` functions
// with the same seeds and chain ids, so runs are reproducible and sample the
// same distribution. It is compiled once per toolchain variant and linked
// against each model object, which defines `new_model`.
#include "args.hpp"
#include "config.hpp"
#include "csv_writer.hpp"
#include "help.hpp"
#include "io.hpp"

#include <stan/callbacks/interrupt.hpp>
#include <stan/callbacks/json_writer.hpp>
#include <stan/callbacks/stream_logger.hpp>
#include <stan/callbacks/structured_writer.hpp>
#include <stan/math/prim/core/init_threadpool_tbb.hpp>
#include <stan/math/rev/core/profiling.hpp>
#include <stan/model/log_prob_grad.hpp>
#include <stan/model/model_base.hpp>
#include <stan/services/diagnose/diagnose.hpp>
#include <stan/services/experimental/advi/fullrank.hpp>
#include <stan/services/experimental/advi/meanfield.hpp>
#include <stan/services/optimize/bfgs.hpp>
#include <stan/services/optimize/laplace_sample.hpp>
#include <stan/services/optimize/lbfgs.hpp>
#include <stan/services/optimize/newton.hpp>
#include <stan/services/pathfinder/multi.hpp>
#include <stan/services/pathfinder/single.hpp>
#include <stan/services/sample/fixed_param.hpp>
#include <stan/services/sample/hmc_nuts_dense_e.hpp>
#include <stan/services/sample/hmc_nuts_dense_e_adapt.hpp>
#include <stan/services/sample/hmc_nuts_diag_e.hpp>
#include <stan/services/sample/hmc_nuts_diag_e_adapt.hpp>
#include <stan/services/sample/hmc_nuts_unit_e.hpp>
#include <stan/services/sample/hmc_nuts_unit_e_adapt.hpp>
#include <stan/services/sample/standalone_gqs.hpp>
#include <stan/services/util/create_unit_e_dense_inv_metric.hpp>
#include <stan/services/util/create_unit_e_diag_inv_metric.hpp>
#include <stan/version.hpp>
#ifdef STAN_OPENCL
#include <stan/math/opencl/opencl_context.hpp>
#endif

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <set>
#include <thread>
#include <unistd.h>

// Defined by the stanc-generated model code.
stan::model::model_base& new_model(stan::io::var_context& data_context,
                                   unsigned int seed, std::ostream* msg_stream);
stan::math::profile_map& get_stan_profile_data();

namespace stanbhm {

using writer_t = csv_writer;
using json_t = stan::callbacks::json_writer<std::ofstream>;
using context_ptr = std::shared_ptr<stan::io::var_context>;

#ifdef STAN_THREADS
constexpr bool threads_on = true;
#else
constexpr bool threads_on = false;
#endif
#ifdef STAN_OPENCL
constexpr bool opencl_on = true;
#else
constexpr bool opencl_on = false;
#endif
#ifdef STAN_NO_RANGE_CHECKS
constexpr bool no_range_checks = true;
#else
constexpr bool no_range_checks = false;
#endif

const std::set<std::string> common_keys
    = {"id",        "init",            "num_threads", "data.file",
       "seed",      "output.file",     "diagnostic_file", "refresh",
       "sig_figs",  "save_cmdstan_config", "profile_file", "platform",
       "device"};

std::set<std::string> with_common(std::set<std::string> keys) {
  keys.insert(common_keys.begin(), common_keys.end());
  return keys;
}

// Everything every method shares: the model, the seed, the output file.
struct run_context {
  const args& a;
  stan::model::model_base& model;
  unsigned int seed;
  bool seed_given;
  long id;
  int refresh;
  int sig_figs;
  int num_threads;
  std::string output_file;
  std::string diagnostic_file;
  std::string init;
  double init_radius;  // meaningful when init is a number
  bool init_is_number;
  stan::callbacks::interrupt interrupt;
  stan::callbacks::stream_logger logger{std::cout, std::cout, std::cout,
                                        std::cerr, std::cerr};

  // Output streams get sig_figs digits when it is given (0..18), the stream
  // default (6) otherwise, as in CmdStan.
  std::unique_ptr<std::ofstream> open_stream(const std::string& path) const {
    auto out = std::make_unique<std::ofstream>(path);
    if (!out->good())
      throw usage_error("cannot write output file '" + path + "'");
    if (sig_figs > -1)
      out->precision(sig_figs);
    return out;
  }

  writer_t open_csv(const std::string& path) const {
    if (path.empty())
      return writer_t();
    return writer_t(open_stream(path), "# ");
  }

  // A JSON writer; with an empty path, one that writes nothing.
  json_t open_json(const std::string& path) const {
    if (path.empty())
      return json_t();
    return json_t(open_stream(path));
  }

  // Init context for chain `chain_id` (CmdStan's `_<id>` suffix rule).
  context_ptr init_context(long chain_id, bool several) const {
    if (init_is_number)
      return std::make_shared<stan::io::empty_var_context>();
    return load_context(chain_input_file(init, chain_id, several));
  }

  // Output file for one chain, named by CmdStan's rule (see output_name).
  std::string chain_path(const std::string& path, long chain_id, bool several,
                         const std::string& tag = "",
                         const std::string& type = ".csv") const {
    if (path.empty())
      return path;
    return output_name(path, tag, type, chain_id, several);
  }
};

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

// The shared head of the config block (before the method subtree).
void config_head(config& cfg, const run_context& c) {
  cfg.fixed(0, "stan_version_major", std::to_string(STAN_MAJOR), true);
  cfg.fixed(0, "stan_version_minor", std::to_string(STAN_MINOR), true);
  cfg.fixed(0, "stan_version_patch", std::to_string(STAN_PATCH), true);
  cfg.fixed(0, "model", c.model.model_name(), true);
  cfg.fixed(0, "start_datetime", utc_now(), true);
  cfg.fixed(0, "method", c.a.method, c.a.method_given);
}

// The shared tail: id, data, init, random, output, threads, compile info.
void config_tail(config& cfg, const run_context& c) {
  cfg.value(0, "id", "id", "1");
  cfg.section(0, "data");
  cfg.value(1, "file", "data.file", "");
  cfg.value(0, "init", "init", "2");
  cfg.section(0, "random");
  cfg.fixed(1, "seed", std::to_string(c.seed), c.seed_given);
  cfg.section(0, "output");
  cfg.value(1, "file", "output.file", "output.csv");
  cfg.value(1, "diagnostic_file", "diagnostic_file", "");
  cfg.value(1, "refresh", "refresh", "100");
  cfg.value(1, "sig_figs", "sig_figs", "-1");
  cfg.value(1, "profile_file", "profile_file", "profile.csv");
  cfg.flag(1, "save_cmdstan_config", "save_cmdstan_config", false);
  cfg.fixed(0, "num_threads", std::to_string(c.num_threads),
            c.a.given("num_threads"));
  for (const auto& line : c.model.model_compile_info())
    cfg.section(0, line);
}

void emit_config(const config& cfg, std::vector<writer_t>& files) {
  for (const auto& line : cfg.lines()) {
    std::cout << line << "\n";
    for (auto& w : files)
      w(line);
  }
  std::cout << std::endl;
}

// The keys each method implements; anything else is refused before any work.
std::set<std::string> method_keys(const std::string& method) {
  if (method == "sample")
    return with_common(
        {"num_samples", "num_warmup", "save_warmup", "thin", "adapt.engaged",
         "gamma", "delta", "kappa", "t0", "init_buffer", "term_buffer",
         "window", "save_metric", "algorithm", "engine", "max_depth", "metric",
         "metric_file", "stepsize", "stepsize_jitter", "num_chains"});
  if (method == "optimize")
    return with_common(
        {"algorithm", "init_alpha", "tol_obj", "tol_rel_obj", "tol_grad",
         "tol_rel_grad", "tol_param", "history_size", "jacobian", "iter",
         "save_iterations"});
  if (method == "variational")
    return with_common(
        {"algorithm", "iter", "grad_samples", "elbo_samples", "eta",
         "adapt.engaged", "adapt.iter", "tol_rel_obj", "eval_elbo",
         "output_samples"});
  if (method == "pathfinder")
    return with_common(
        {"init_alpha", "tol_obj", "tol_rel_obj", "tol_grad", "tol_rel_grad",
         "tol_param", "history_size", "num_psis_draws", "num_paths",
         "save_single_paths", "psis_resample", "calculate_lp",
         "max_lbfgs_iters", "num_draws", "num_elbo_draws"});
  if (method == "laplace")
    return with_common(
        {"mode", "jacobian", "draws", "calculate_lp"});
  if (method == "generate_quantities")
    return with_common(
        {"fitted_params", "num_chains"});
  if (method == "log_prob")
    return with_common(
        {"unconstrained_params", "constrained_params", "jacobian"});
  if (method == "diagnose")
    return with_common(
        {"test", "epsilon", "error"});
  return common_keys;
}

int run_sample(run_context& c) {
  const args& a = c.a;
  std::string algorithm = a.str("algorithm", "hmc");
  if (algorithm != "hmc" && algorithm != "fixed_param")
    throw usage_error("algorithm=" + algorithm
                      + " is not a sampler (use hmc or fixed_param)");
  if (a.str("engine", "nuts") != "nuts")
    throw usage_error("engine=" + a.str("engine", "")
                      + " is not supported by the stanbhm launcher; use "
                        "engine=nuts");
  std::string metric = a.str("metric", "diag_e");
  if (metric != "unit_e" && metric != "diag_e" && metric != "dense_e")
    throw usage_error("metric must be unit_e, diag_e or dense_e, got '"
                      + metric + "'");
  bool save_metric = a.boolean("save_metric", false);
  long num_chains = a.integer("num_chains", 1);
  int num_samples = a.integer("num_samples", 1000);
  int num_warmup = a.integer("num_warmup", 1000);
  int thin = a.integer("thin", 1);
  bool save_warmup = a.boolean("save_warmup", false);
  bool adapt = a.boolean("adapt.engaged", true);
  int max_depth = a.integer("max_depth", 10);
  double stepsize = a.real("stepsize", 1);
  double jitter = a.real("stepsize_jitter", 0);
  double delta = a.real("delta", 0.8), gamma = a.real("gamma", 0.05);
  double kappa = a.real("kappa", 0.75), t0 = a.real("t0", 10);
  long init_buffer = a.integer("init_buffer", 75);
  long term_buffer = a.integer("term_buffer", 50);
  long window = a.integer("window", 25);
  if (num_chains < 1)
    throw usage_error("num_chains must be at least 1");
  if (num_samples < 0 || num_warmup < 0)
    throw usage_error("num_samples and num_warmup must be non-negative");
  if (thin < 1)
    throw usage_error("thin must be at least 1");
  if (max_depth < 1)
    throw usage_error("max_depth must be at least 1");
  if (!(stepsize > 0))
    throw usage_error("stepsize must be positive");
  if (jitter < 0 || jitter > 1)
    throw usage_error("stepsize_jitter must be in [0, 1]");
  if (!(delta > 0 && delta < 1))
    throw usage_error("delta must be in (0, 1)");
  if (!(gamma > 0) || !(kappa > 0) || !(t0 > 0))
    throw usage_error("gamma, kappa and t0 must be positive");
  if (init_buffer < 0 || term_buffer < 0 || window < 0)
    throw usage_error("adaptation windows must be non-negative");
  bool fixed = algorithm == "fixed_param";
  if (!fixed && c.model.num_params_r() == 0) {
    c.logger.info(
        "Model contains no parameters; running the fixed_param sampler.");
    fixed = true;
  }
  if (!fixed && adapt && num_warmup == 0)
    throw usage_error(
        "The number of warmup samples (num_warmup) must be greater than zero "
        "if adaptation is enabled.");
  if (save_metric && !adapt)
    throw usage_error(
        "save_metric=1 needs adaptation (adapt engaged=1): only the adapted "
        "step size and metric are saved");
  if (save_metric && fixed) {
    c.logger.info(
        "save_metric=1: the fixed_param sampler has no step size or metric, "
        "so no _metric.json file is written.");
    save_metric = false;
  }

  config cfg(a);
  config_head(cfg, c);
  cfg.section(1, "sample");
  cfg.value(2, "num_samples", "num_samples", "1000");
  cfg.value(2, "num_warmup", "num_warmup", "1000");
  cfg.flag(2, "save_warmup", "save_warmup", false);
  cfg.value(2, "thin", "thin", "1");
  cfg.section(2, "adapt");
  cfg.flag(3, "engaged", "adapt.engaged", true);
  cfg.value(3, "gamma", "gamma", "0.05");
  cfg.value(3, "delta", "delta", "0.8");
  cfg.value(3, "kappa", "kappa", "0.75");
  cfg.value(3, "t0", "t0", "10");
  cfg.value(3, "init_buffer", "init_buffer", "75");
  cfg.value(3, "term_buffer", "term_buffer", "50");
  cfg.value(3, "window", "window", "25");
  cfg.flag(3, "save_metric", "save_metric", false);
  if (fixed) {
    cfg.fixed(2, "algorithm", "fixed_param", true);
    cfg.section(3, "fixed_param");
  } else {
    cfg.value(2, "algorithm", "algorithm", "hmc");
    cfg.section(3, "hmc");
    cfg.value(4, "engine", "engine", "nuts");
    cfg.section(5, "nuts");
    cfg.value(6, "max_depth", "max_depth", "10");
    cfg.value(4, "metric", "metric", "diag_e");
    cfg.value(4, "metric_file", "metric_file", "");
    cfg.value(4, "stepsize", "stepsize", "1");
    cfg.value(4, "stepsize_jitter", "stepsize_jitter", "0");
  }
  cfg.value(2, "num_chains", "num_chains", "1");
  config_tail(cfg, c);

  bool several = num_chains > 1;
  std::vector<writer_t> sample_w, diag_w, init_w;
  std::vector<json_t> metric_w;
  std::vector<context_ptr> inits, metrics;
  std::string metric_file = a.str("metric_file", "");
  size_t n_params = c.model.num_params_r();
  for (long i = 0; i < num_chains; ++i) {
    long cid = c.id + i;
    sample_w.push_back(c.open_csv(c.chain_path(c.output_file, cid, several)));
    diag_w.push_back(
        c.open_csv(c.chain_path(c.diagnostic_file, cid, several)));
    init_w.emplace_back();
    // The adapted step size and inverse metric, as <output>_metric.json.
    metric_w.push_back(c.open_json(
        save_metric ? c.chain_path(c.output_file, cid, several, "_metric",
                                   ".json")
                    : ""));
    inits.push_back(c.init_context(cid, several));
    if (!metric_file.empty()) {
      metrics.push_back(
          load_context(chain_input_file(metric_file, cid, several)));
    } else if (metric == "dense_e") {
      metrics.push_back(std::make_shared<stan::io::array_var_context>(
          stan::services::util::create_unit_e_dense_inv_metric(n_params)));
    } else {
      metrics.push_back(std::make_shared<stan::io::array_var_context>(
          stan::services::util::create_unit_e_diag_inv_metric(n_params)));
    }
  }
  emit_config(cfg, sample_w);
  for (auto& w : diag_w)
    for (const auto& line : cfg.lines())
      w(line);

  namespace svc = stan::services::sample;
  auto& m = c.model;
  double r = c.init_radius;
  if (fixed)
    return svc::fixed_param(m, num_chains, inits, c.seed, c.id, r, num_samples,
                            thin, c.refresh, c.interrupt, c.logger, init_w,
                            sample_w, diag_w);
  if (metric == "unit_e") {
    if (adapt)
      return svc::hmc_nuts_unit_e_adapt(
          m, num_chains, inits, c.seed, c.id, r, num_warmup, num_samples, thin,
          save_warmup, c.refresh, stepsize, jitter, max_depth, delta, gamma,
          kappa, t0, c.interrupt, c.logger, init_w, sample_w, diag_w,
          metric_w);
    return svc::hmc_nuts_unit_e(m, num_chains, inits, c.seed, c.id, r,
                                num_warmup, num_samples, thin, save_warmup,
                                c.refresh, stepsize, jitter, max_depth,
                                c.interrupt, c.logger, init_w, sample_w,
                                diag_w);
  }
  if (metric == "diag_e") {
    if (adapt)
      return svc::hmc_nuts_diag_e_adapt(
          m, num_chains, inits, metrics, c.seed, c.id, r, num_warmup,
          num_samples, thin, save_warmup, c.refresh, stepsize, jitter,
          max_depth, delta, gamma, kappa, t0, init_buffer, term_buffer, window,
          c.interrupt, c.logger, init_w, sample_w, diag_w, metric_w);
    return svc::hmc_nuts_diag_e(m, num_chains, inits, metrics, c.seed, c.id, r,
                                num_warmup, num_samples, thin, save_warmup,
                                c.refresh, stepsize, jitter, max_depth,
                                c.interrupt, c.logger, init_w, sample_w,
                                diag_w);
  }
  if (adapt)
    return svc::hmc_nuts_dense_e_adapt(
        m, num_chains, inits, metrics, c.seed, c.id, r, num_warmup,
        num_samples, thin, save_warmup, c.refresh, stepsize, jitter, max_depth,
        delta, gamma, kappa, t0, init_buffer, term_buffer, window, c.interrupt,
        c.logger, init_w, sample_w, diag_w, metric_w);
  return svc::hmc_nuts_dense_e(m, num_chains, inits, metrics, c.seed, c.id, r,
                               num_warmup, num_samples, thin, save_warmup,
                               c.refresh, stepsize, jitter, max_depth,
                               c.interrupt, c.logger, init_w, sample_w, diag_w);
}

// L-BFGS settings shared by optimize and pathfinder, in CmdStan's order.
void config_lbfgs(config& cfg, int depth) {
  cfg.value(depth, "init_alpha", "init_alpha", "0.001");
  cfg.value(depth, "tol_obj", "tol_obj", "1e-12");
  cfg.value(depth, "tol_rel_obj", "tol_rel_obj", "10000");
  cfg.value(depth, "tol_grad", "tol_grad", "1e-08");
  cfg.value(depth, "tol_rel_grad", "tol_rel_grad", "1e+07");
  cfg.value(depth, "tol_param", "tol_param", "1e-08");
}

struct lbfgs_settings {
  double init_alpha, tol_obj, tol_rel_obj, tol_grad, tol_rel_grad, tol_param;
  int history_size;
  explicit lbfgs_settings(const args& a)
      : init_alpha(a.real("init_alpha", 0.001)),
        tol_obj(a.real("tol_obj", 1e-12)),
        tol_rel_obj(a.real("tol_rel_obj", 1e4)),
        tol_grad(a.real("tol_grad", 1e-8)),
        tol_rel_grad(a.real("tol_rel_grad", 1e7)),
        tol_param(a.real("tol_param", 1e-8)),
        history_size(a.integer("history_size", 5)) {
    if (!(init_alpha > 0) || tol_obj < 0 || tol_rel_obj < 0 || tol_grad < 0
        || tol_rel_grad < 0 || tol_param < 0 || history_size < 1)
      throw usage_error(
          "L-BFGS settings must be non-negative (init_alpha positive, "
          "history_size at least 1)");
  }
};

// Runs `body` with a single CSV writer that already carries the config.
//
// `header_only_diagnostic`: the method's service has no diagnostic stream
// (optimize, generate_quantities, log_prob, diagnose). CmdStan still creates
// `diagnostic_file` for these and writes the configuration block into it, so
// the launcher does the same rather than ignoring the argument.
template <typename F>
int with_single_output(run_context& c, const config& cfg, F body,
                       bool header_only_diagnostic = false) {
  std::vector<writer_t> out;
  out.push_back(c.open_csv(c.chain_path(c.output_file, c.id, false)));
  emit_config(cfg, out);
  if (header_only_diagnostic && !c.diagnostic_file.empty()) {
    writer_t diag = c.open_csv(c.chain_path(c.diagnostic_file, c.id, false));
    for (const auto& line : cfg.lines())
      diag(line);
  }
  return body(out[0]);
}

int run_optimize(run_context& c) {
  const args& a = c.a;
  std::string algo = a.str("algorithm", "lbfgs");
  if (algo != "lbfgs" && algo != "bfgs" && algo != "newton")
    throw usage_error("optimize algorithm must be lbfgs, bfgs or newton, got '"
                      + algo + "'");
  lbfgs_settings s(a);
  bool jacobian = a.boolean("jacobian", false);
  int iter = a.integer("iter", 2000);
  bool save_iter = a.boolean("save_iterations", false);
  if (iter < 1)
    throw usage_error("iter must be at least 1");

  config cfg(a);
  config_head(cfg, c);
  cfg.section(1, "optimize");
  cfg.value(2, "algorithm", "algorithm", "lbfgs");
  cfg.section(3, algo);
  if (algo != "newton") {
    config_lbfgs(cfg, 4);
    if (algo == "lbfgs")
      cfg.value(4, "history_size", "history_size", "5");
  }
  cfg.flag(2, "jacobian", "jacobian", false);
  cfg.value(2, "iter", "iter", "2000");
  cfg.flag(2, "save_iterations", "save_iterations", false);
  config_tail(cfg, c);

  auto init = c.init_context(c.id, false);
  writer_t init_w;
  namespace opt = stan::services::optimize;
  using M = stan::model::model_base;
  return with_single_output(c, cfg, [&](writer_t& out) {
    double r = c.init_radius;
    if (algo == "newton")
      return jacobian ? opt::newton<M, true>(c.model, *init, c.seed, c.id, r,
                                             iter, save_iter, c.interrupt,
                                             c.logger, init_w, out)
                      : opt::newton<M, false>(c.model, *init, c.seed, c.id, r,
                                              iter, save_iter, c.interrupt,
                                              c.logger, init_w, out);
    if (algo == "bfgs")
      return jacobian
                 ? opt::bfgs<M, true>(c.model, *init, c.seed, c.id, r,
                                      s.init_alpha, s.tol_obj, s.tol_rel_obj,
                                      s.tol_grad, s.tol_rel_grad, s.tol_param,
                                      iter, save_iter, c.refresh, c.interrupt,
                                      c.logger, init_w, out)
                 : opt::bfgs<M, false>(c.model, *init, c.seed, c.id, r,
                                       s.init_alpha, s.tol_obj, s.tol_rel_obj,
                                       s.tol_grad, s.tol_rel_grad, s.tol_param,
                                       iter, save_iter, c.refresh, c.interrupt,
                                       c.logger, init_w, out);
    return jacobian
               ? opt::lbfgs<M, true>(c.model, *init, c.seed, c.id, r,
                                     s.history_size, s.init_alpha, s.tol_obj,
                                     s.tol_rel_obj, s.tol_grad, s.tol_rel_grad,
                                     s.tol_param, iter, save_iter, c.refresh,
                                     c.interrupt, c.logger, init_w, out)
               : opt::lbfgs<M, false>(c.model, *init, c.seed, c.id, r,
                                      s.history_size, s.init_alpha, s.tol_obj,
                                      s.tol_rel_obj, s.tol_grad,
                                      s.tol_rel_grad, s.tol_param, iter,
                                      save_iter, c.refresh, c.interrupt,
                                      c.logger, init_w, out);
  }, true);
}

int run_variational(run_context& c) {
  const args& a = c.a;
  std::string algo = a.str("algorithm", "meanfield");
  if (algo != "meanfield" && algo != "fullrank")
    throw usage_error("variational algorithm must be meanfield or fullrank, "
                      "got '" + algo + "'");
  int iter = a.integer("iter", 10000);
  int grad_samples = a.integer("grad_samples", 1);
  int elbo_samples = a.integer("elbo_samples", 100);
  double eta = a.real("eta", 1.0);
  bool adapt = a.boolean("adapt.engaged", true);
  int adapt_iter = a.integer("adapt.iter", 50);
  double tol_rel_obj = a.real("tol_rel_obj", 0.01);
  int eval_elbo = a.integer("eval_elbo", 100);
  int output_samples = a.integer("output_samples", 1000);
  if (iter < 1 || grad_samples < 1 || elbo_samples < 1 || adapt_iter < 1
      || eval_elbo < 1 || output_samples < 1 || !(eta > 0)
      || !(tol_rel_obj > 0))
    throw usage_error("variational settings must be positive");

  config cfg(a);
  config_head(cfg, c);
  cfg.section(1, "variational");
  cfg.value(2, "algorithm", "algorithm", "meanfield");
  cfg.section(3, algo);
  cfg.value(2, "iter", "iter", "10000");
  cfg.value(2, "grad_samples", "grad_samples", "1");
  cfg.value(2, "elbo_samples", "elbo_samples", "100");
  cfg.value(2, "eta", "eta", "1");
  cfg.section(2, "adapt");
  cfg.flag(3, "engaged", "adapt.engaged", true);
  cfg.value(3, "iter", "adapt.iter", "50");
  cfg.value(2, "tol_rel_obj", "tol_rel_obj", "0.01");
  cfg.value(2, "eval_elbo", "eval_elbo", "100");
  cfg.value(2, "output_samples", "output_samples", "1000");
  config_tail(cfg, c);

  auto init = c.init_context(c.id, false);
  writer_t init_w;
  writer_t diag_w = c.open_csv(c.chain_path(c.diagnostic_file, c.id, false));
  for (const auto& line : cfg.lines())
    diag_w(line);
  namespace advi = stan::services::experimental::advi;
  return with_single_output(c, cfg, [&](writer_t& out) {
    if (algo == "fullrank")
      return advi::fullrank(c.model, *init, c.seed, c.id, c.init_radius,
                            grad_samples, elbo_samples, iter, tol_rel_obj, eta,
                            adapt, adapt_iter, eval_elbo, output_samples,
                            c.interrupt, c.logger, init_w, out, diag_w);
    return advi::meanfield(c.model, *init, c.seed, c.id, c.init_radius,
                           grad_samples, elbo_samples, iter, tol_rel_obj, eta,
                           adapt, adapt_iter, eval_elbo, output_samples,
                           c.interrupt, c.logger, init_w, out, diag_w);
  });
}

int run_pathfinder(run_context& c) {
  const args& a = c.a;
  lbfgs_settings s(a);
  int num_psis_draws = a.integer("num_psis_draws", 1000);
  int num_paths = a.integer("num_paths", 4);
  bool psis_resample = a.boolean("psis_resample", true);
  bool calculate_lp = a.boolean("calculate_lp", true);
  int max_iters = a.integer("max_lbfgs_iters", 1000);
  int num_draws = a.integer("num_draws", 1000);
  int num_elbo_draws = a.integer("num_elbo_draws", 25);
  if (a.boolean("save_single_paths", false))
    throw usage_error(
        "save_single_paths=1 is not supported by the stanbhm launcher");
  if (!c.diagnostic_file.empty())
    throw usage_error(
        "diagnostic_file is not supported with method=pathfinder by the "
        "stanbhm launcher");
  if (num_psis_draws < 1 || num_paths < 1 || max_iters < 1 || num_draws < 1
      || num_elbo_draws < 1)
    throw usage_error("pathfinder draw and iteration counts must be positive");

  config cfg(a);
  config_head(cfg, c);
  cfg.section(1, "pathfinder");
  config_lbfgs(cfg, 2);
  cfg.value(2, "history_size", "history_size", "5");
  cfg.value(2, "num_psis_draws", "num_psis_draws", "1000");
  cfg.value(2, "num_paths", "num_paths", "4");
  cfg.flag(2, "save_single_paths", "save_single_paths", false);
  cfg.flag(2, "psis_resample", "psis_resample", true);
  cfg.flag(2, "calculate_lp", "calculate_lp", true);
  cfg.value(2, "max_lbfgs_iters", "max_lbfgs_iters", "1000");
  cfg.value(2, "num_draws", "num_draws", "1000");
  cfg.value(2, "num_elbo_draws", "num_elbo_draws", "25");
  config_tail(cfg, c);

  namespace pf = stan::services::pathfinder;
  stan::callbacks::structured_writer no_diagnostics;
  return with_single_output(c, cfg, [&](writer_t& out) {
    if (num_paths == 1) {
      auto init = c.init_context(c.id, false);
      writer_t init_w;
      return pf::pathfinder_lbfgs_single<false, false>(
          c.model, *init, c.seed, c.id, c.init_radius, s.history_size,
          s.init_alpha, s.tol_obj, s.tol_rel_obj, s.tol_grad, s.tol_rel_grad,
          s.tol_param, max_iters, num_elbo_draws, num_draws, false, c.refresh,
          c.interrupt, c.logger, init_w, out, no_diagnostics, calculate_lp);
    }
    std::vector<context_ptr> inits;
    std::vector<writer_t> init_w(num_paths), single_w(num_paths);
    std::vector<stan::callbacks::structured_writer> single_diag(num_paths);
    for (int i = 0; i < num_paths; ++i)
      inits.push_back(c.init_context(c.id + i, true));
    return pf::pathfinder_lbfgs_multi(
        c.model, inits, c.seed, c.id, c.init_radius, s.history_size,
        s.init_alpha, s.tol_obj, s.tol_rel_obj, s.tol_grad, s.tol_rel_grad,
        s.tol_param, max_iters, num_elbo_draws, num_draws, num_psis_draws,
        num_paths, false, c.refresh, c.interrupt, c.logger, init_w, single_w,
        single_diag, out, no_diagnostics, calculate_lp, psis_resample);
  });
}

// Constrained parameter rows from a JSON file (one row) or a Stan CSV.
std::vector<std::vector<double>> constrained_rows(
    const stan::model::model_base& model, const std::string& path) {
  std::vector<std::string> names;
  model.constrained_param_names(names, false, false);
  if (ends_with(path, ".csv"))
    return stan_csv::read(path).select(names, path);
  auto ctx = load_context(path);
  Eigen::VectorXd unc;
  std::stringstream msg;
  model.transform_inits(*ctx, unc, &msg);
  Eigen::VectorXd cons;
  stan::rng_t rng = stan::services::util::create_rng(0, 1);
  model.write_array(rng, unc, cons, false, false, &msg);
  return {std::vector<double>(cons.data(), cons.data() + cons.size())};
}

Eigen::VectorXd unconstrain(const stan::model::model_base& model,
                            const std::vector<double>& row) {
  Eigen::VectorXd cons = Eigen::Map<const Eigen::VectorXd>(row.data(),
                                                           row.size());
  Eigen::VectorXd unc;
  std::stringstream msg;
  model.unconstrain_array(cons, unc, &msg);
  return unc;
}

int run_laplace(run_context& c) {
  const args& a = c.a;
  if (!a.given("mode"))
    throw usage_error("method=laplace needs mode=<file> (JSON or Stan CSV)");
  std::string mode = a.str("mode", "");
  bool jacobian = a.boolean("jacobian", true);
  int draws = a.integer("draws", 1000);
  bool calculate_lp = a.boolean("calculate_lp", true);
  if (draws < 1)
    throw usage_error("draws must be at least 1");
  auto rows = constrained_rows(c.model, mode);
  if (rows.empty())
    throw usage_error("mode file '" + mode + "' holds no parameter values");
  Eigen::VectorXd theta_hat = unconstrain(c.model, rows.back());

  config cfg(a);
  config_head(cfg, c);
  cfg.section(1, "laplace");
  cfg.value(2, "mode", "mode", "");
  cfg.flag(2, "jacobian", "jacobian", true);
  cfg.value(2, "draws", "draws", "1000");
  cfg.flag(2, "calculate_lp", "calculate_lp", true);
  config_tail(cfg, c);
  // diagnostic_file: the log density, gradient and Hessian at the mode, as
  // JSON (CmdStan's format; the name's extension becomes .json).
  json_t hessian_w
      = c.open_json(c.chain_path(c.diagnostic_file, c.id, false, "", ".json"));
  return with_single_output(c, cfg, [&](writer_t& out) {
    return jacobian ? stan::services::laplace_sample<true>(
                          c.model, theta_hat, draws, calculate_lp, c.seed,
                          c.refresh, c.interrupt, c.logger, out, hessian_w)
                    : stan::services::laplace_sample<false>(
                          c.model, theta_hat, draws, calculate_lp, c.seed,
                          c.refresh, c.interrupt, c.logger, out, hessian_w);
  });
}

int run_generate_quantities(run_context& c) {
  const args& a = c.a;
  if (!a.given("fitted_params"))
    throw usage_error(
        "method=generate_quantities needs fitted_params=<Stan CSV file>");
  if (a.integer("num_chains", 1) != 1)
    throw usage_error(
        "generate_quantities runs one chain per process in the stanbhm "
        "launcher (num_chains=1)");
  std::string path = a.str("fitted_params", "");
  std::vector<std::string> names;
  c.model.constrained_param_names(names, false, false);
  auto rows = stan_csv::read(path).select(names, path);
  Eigen::MatrixXd draws(rows.size(), names.size());
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < names.size(); ++j)
      draws(i, j) = rows[i][j];

  config cfg(a);
  config_head(cfg, c);
  cfg.section(1, "generate_quantities");
  cfg.value(2, "fitted_params", "fitted_params", "");
  cfg.value(2, "num_chains", "num_chains", "1");
  config_tail(cfg, c);
  return with_single_output(c, cfg, [&](writer_t& out) {
    return stan::services::standalone_generate(c.model, draws, c.seed,
                                               c.interrupt, c.logger, out);
  }, true);
}

int run_log_prob(run_context& c) {
  const args& a = c.a;
  bool jacobian = a.boolean("jacobian", true);
  bool has_u = a.given("unconstrained_params");
  bool has_c = a.given("constrained_params");
  if (has_u == has_c)
    throw usage_error(
        "method=log_prob needs exactly one of constrained_params=<file> and "
        "unconstrained_params=<file>");
  std::vector<Eigen::VectorXd> points;
  if (has_c) {
    for (const auto& row :
         constrained_rows(c.model, a.str("constrained_params", "")))
      points.push_back(unconstrain(c.model, row));
  } else {
    auto ctx = load_context(a.str("unconstrained_params", ""));
    if (!ctx->contains_r("params_r"))
      throw usage_error("unconstrained_params file lacks variable 'params_r'");
    auto dims = ctx->dims_r("params_r");
    auto vals = ctx->vals_r("params_r");
    size_t n = c.model.num_params_r();
    if (vals.size() % (n == 0 ? 1 : n) != 0 || dims.size() > 2)
      throw usage_error("params_r must hold rows of "
                        + std::to_string(n) + " unconstrained values");
    size_t rows = n == 0 ? 1 : vals.size() / n;
    // JSON arrays arrive column-major: element (i, j) at i + j * rows.
    for (size_t i = 0; i < rows; ++i) {
      Eigen::VectorXd p(n);
      for (size_t j = 0; j < n; ++j)
        p(j) = dims.size() == 2 ? vals[i + j * rows] : vals[j];
      points.push_back(p);
    }
  }

  config cfg(a);
  config_head(cfg, c);
  cfg.section(1, "log_prob");
  cfg.value(2, "unconstrained_params", "unconstrained_params", "");
  cfg.value(2, "constrained_params", "constrained_params", "");
  cfg.flag(2, "jacobian", "jacobian", true);
  config_tail(cfg, c);
  return with_single_output(c, cfg, [&](writer_t& out) {
    // CmdStan names each gradient column after its unconstrained parameter.
    std::vector<std::string> unc_names;
    c.model.unconstrained_param_names(unc_names, false, false);
    std::vector<std::string> header{"lp__"};
    for (const auto& name : unc_names)
      header.push_back("g_" + name);
    out(header);
    for (const auto& p : points) {
      std::vector<double> params_r(p.data(), p.data() + p.size());
      std::vector<int> params_i;
      std::vector<double> grad;
      std::stringstream msg;
      double lp = jacobian ? stan::model::log_prob_grad<true, true>(
                                 c.model, params_r, params_i, grad, &msg)
                           : stan::model::log_prob_grad<true, false>(
                                 c.model, params_r, params_i, grad, &msg);
      std::vector<double> row{lp};
      row.insert(row.end(), grad.begin(), grad.end());
      out(row);
    }
    return 0;
  }, true);
}

int run_diagnose(run_context& c) {
  const args& a = c.a;
  if (a.str("test", "gradient") != "gradient")
    throw usage_error("diagnose supports test=gradient only");
  double epsilon = a.real("epsilon", 1e-6), error = a.real("error", 1e-6);
  config cfg(a);
  config_head(cfg, c);
  cfg.section(1, "diagnose");
  cfg.value(2, "test", "test", "gradient");
  cfg.section(3, "gradient");
  cfg.value(4, "epsilon", "epsilon", "1e-06");
  cfg.value(4, "error", "error", "1e-06");
  config_tail(cfg, c);
  auto init = c.init_context(c.id, false);
  writer_t init_w;
  return with_single_output(c, cfg, [&](writer_t& out) {
    return stan::services::diagnose::diagnose(
        c.model, *init, c.seed, c.id, c.init_radius, epsilon, error,
        c.interrupt, c.logger, init_w, out);
  }, true);
}

void print_info() {
  auto tf = [](bool b) { return b ? "true" : "false"; };
  std::cout << "stan_version_major = " << STAN_MAJOR << "\n"
            << "stan_version_minor = " << STAN_MINOR << "\n"
            << "stan_version_patch = " << STAN_PATCH << "\n"
            << "STAN_THREADS = " << tf(threads_on) << "\n"
            << "STAN_MPI = false\n"
            << "STAN_OPENCL = " << tf(opencl_on) << "\n"
            << "STAN_NO_RANGE_CHECKS = " << tf(no_range_checks) << "\n"
            << "STAN_CPP_OPTIMS = false\n"
            << "LAUNCHER = stanbhm" << std::endl;
}

// CmdStan's thread rule: num_threads defaults to STAN_NUM_THREADS (or 1);
// giving both with different values is an error unless the environment says
// 1. Stan Math reads and checks the variable itself (and ignores it in builds
// without STAN_THREADS, so one environment can serve threaded and plain
// models alike).
int threads_from(const args& a) {
  int env_threads = stan::math::internal::get_num_threads();
  long long n = a.integer("num_threads", env_threads);
  if (threads_on && (n == 0 || n < -1))
    throw usage_error("argument 'num_threads' must be positive or -1, got "
                      + std::to_string(n));
  if (!threads_on && n != 1)
    throw usage_error(
        "argument 'num_threads' must be 1 for a model built without "
        "STAN_THREADS (re-compile with STAN_THREADS=true), got "
        + std::to_string(n));
  if (env_threads != n && env_threads != 1)
    throw usage_error("STAN_NUM_THREADS=" + std::to_string(env_threads)
                      + " but argument num_threads=" + std::to_string(n)
                      + "; set only one of them or make them equal");
  if (n == -1)
    n = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(n);
}

// Profiles from the program's `profile` statements, written as CmdStan does:
// only when the program has any, to `profile_file` (default profile.csv).
// Written to a temporary name and renamed, so a reader never sees half a file.
void write_profiles(const run_context& c) {
  stan::math::profile_map& profiles = get_stan_profile_data();
  if (profiles.empty())
    return;
  std::string path = c.a.str("profile_file", "profile.csv");
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    if (!out.good())
      throw usage_error("cannot write profile_file '" + path + "'");
    if (c.sig_figs > -1)
      out.precision(c.sig_figs);
    out << "name,thread_id,total_time,forward_time,reverse_time,"
           "chain_stack,no_chain_stack,autodiff_calls,no_autodiff_calls\n";
    for (const auto& kv : profiles) {
      const auto& p = kv.second;
      out << kv.first.first << "," << kv.first.second << ","
          << p.get_fwd_time() + p.get_rev_time() << "," << p.get_fwd_time()
          << "," << p.get_rev_time() << "," << p.get_chain_stack_used() << ","
          << p.get_nochain_stack_used() << "," << p.get_num_rev_passes() << ","
          << p.get_num_no_AD_fwd_passes() << "\n";
    }
    out.flush();
    if (!out.good())
      throw usage_error("cannot write profile_file '" + path + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw usage_error("cannot write profile_file '" + path + "'");
}

#ifdef STAN_OPENCL
// stanbhm's addition: CmdStanPy passes no OpenCL arguments, so a program built once
// takes its device at run time from STANBHM_OPENCL_DEVICE="platform,device" when the
// command line names none.
void opencl_device_from_env(long long& platform, long long& device) {
  const char* value = std::getenv("STANBHM_OPENCL_DEVICE");
  if (value == nullptr || *value == '\0')
    return;
  std::string text(value);
  auto comma = text.find(',');
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 10
           && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (comma == std::string::npos || !digits(text.substr(0, comma))
      || !digits(text.substr(comma + 1)))
    throw usage_error("STANBHM_OPENCL_DEVICE must be 'platform,device' (two "
                      "non-negative integers), got '" + text + "'");
  platform = std::stoll(text.substr(0, comma));
  device = std::stoll(text.substr(comma + 1));
}
#endif

int run(const args& a) {
  a.allow_only(method_keys(a.method));
  if (a.boolean("save_cmdstan_config", false))
    throw usage_error(
        "save_cmdstan_config=1 is not supported by the stanbhm launcher");
  if ((a.given("platform") || a.given("device")) && !opencl_on)
    throw usage_error(
        "opencl platform/device given but the model was built without "
        "STAN_OPENCL");
#ifdef STAN_OPENCL
  {
    // CmdStan: both or neither; -1 (the default) keeps the compile-time IDs.
    long long platform = a.integer("platform", -1, -1);
    long long device = a.integer("device", -1, -1);
    if ((platform < 0) != (device < 0))
      throw usage_error("Please set both device and platform OpenCL IDs.");
    if (platform < 0)
      opencl_device_from_env(platform, device);
    if (platform >= 0)
      stan::math::opencl_context.select_device(platform, device);
  }
#endif
  int num_threads = threads_from(a);
  stan::math::init_threadpool_tbb(num_threads);

  // CmdStan's range: 0 <= seed < 2^32, or -1 for a seed from the clock.
  long long seed_arg = a.integer("seed", -1, LLONG_MIN, LLONG_MAX);
  if (seed_arg < -1 || seed_arg > static_cast<long long>(UINT_MAX))
    throw usage_error(
        "argument 'seed' must be a non-negative integer < 4294967296 or -1 "
        "(a seed from the system time), got '" + a.str("seed", "") + "'");
  bool seed_given = seed_arg >= 0;
  unsigned int seed = seed_given
                          ? static_cast<unsigned int>(seed_arg)
                          : static_cast<unsigned int>(
                              std::chrono::duration_cast<
                                  std::chrono::milliseconds>(
                                  std::chrono::system_clock::now()
                                      .time_since_epoch())
                                  .count());
  long long id = a.integer("id", 1);
  if (id < 0)
    throw usage_error("argument 'id' must be non-negative, got "
                      + std::to_string(id));
  long long refresh = a.integer("refresh", 100);
  if (refresh < 0)
    throw usage_error("argument 'refresh' must be non-negative, got "
                      + std::to_string(refresh));
  long long sig_figs = a.integer("sig_figs", -1);
  if (sig_figs < -1 || sig_figs > 18)
    throw usage_error(
        "argument 'sig_figs' must be between 0 and 18, or -1 for the default, "
        "got " + std::to_string(sig_figs));
  std::string init = a.str("init", "2");
  char* end = nullptr;
  double radius = std::strtod(init.c_str(), &end);
  bool init_is_number = !init.empty() && *end == '\0';
  if (init_is_number && radius < 0)
    throw usage_error("init radius must be non-negative");
  if (!init_is_number)
    radius = 2;

  auto data = load_context(a.str("data.file", ""));
  std::stringstream model_msg;
  stan::model::model_base* model = nullptr;
  try {
    model = &new_model(*data, seed, &model_msg);
  } catch (const std::exception& e) {
    if (model_msg.str().length() > 0)
      std::cerr << model_msg.str() << std::endl;
    std::cerr << "Error in model data: " << e.what() << std::endl;
    return 1;
  }
  if (model_msg.str().length() > 0)
    std::cout << model_msg.str() << std::endl;

  run_context c{a,
                *model,
                seed,
                seed_given,
                id,
                static_cast<int>(refresh),
                static_cast<int>(sig_figs),
                num_threads,
                a.str("output.file", "output.csv"),
                a.str("diagnostic_file", ""),
                init,
                radius,
                init_is_number};
  const std::string& m = a.method;
  int rc;
  if (m == "sample")
    rc = run_sample(c);
  else if (m == "optimize")
    rc = run_optimize(c);
  else if (m == "variational")
    rc = run_variational(c);
  else if (m == "pathfinder")
    rc = run_pathfinder(c);
  else if (m == "laplace")
    rc = run_laplace(c);
  else if (m == "generate_quantities")
    rc = run_generate_quantities(c);
  else if (m == "log_prob")
    rc = run_log_prob(c);
  else
    rc = run_diagnose(c);
  write_profiles(c);
  delete model;
  return rc;
}

}  // namespace stanbhm

// Exit status as in CmdStan: 0 on success, 1 for anything else (a refused
// argument, bad data, or a service that returned an error code). The message
// on stderr says which.
int main(int argc, const char* argv[]) {
  if (argc >= 2 && std::string(argv[1]) == "info") {
    stanbhm::print_info();
    return 0;
  }
  if (argc == 1) {
    // CmdStan prints its usage for a bare command line and fails: there is
    // nothing to run.
    stanbhm::print_help(std::cout, argv[0], "", "", false,
                        stanbhm::threads_on, stanbhm::opencl_on);
    return 1;
  }
  try {
    stanbhm::args a(argc, argv);
    if (a.help) {
      stanbhm::print_help(std::cout, argv[0], a.help_topic, a.method,
                          a.help_all, stanbhm::threads_on,
                          stanbhm::opencl_on);
      return 0;
    }
    return stanbhm::run(a) == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << std::endl;
    return 1;
  }
}
