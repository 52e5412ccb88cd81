// `help`, `help-all` and `<section> help`: the argument tree the launcher
// accepts, laid out the way CmdStan prints its own (name, description, valid
// values or subarguments, default; two spaces per level), so a user reading
// the help of a stanbhm-built model learns the same command line.
//
// The tree lists what this launcher implements. Values CmdStan knows but the
// launcher refuses (engine=static, save_single_paths=1, ...) are named in the
// descriptions so the help never promises what a run would reject.
#ifndef STANBHM_LAUNCHER_HELP_HPP
#define STANBHM_LAUNCHER_HELP_HPP

#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace stanbhm {

struct help_node {
  enum kind_t { category, list, value };
  kind_t kind;
  std::string name;
  std::string description;
  std::string type;      // value: int, double, boolean, string, ...
  std::string validity;  // value: the accepted range
  std::string dflt;      // value and list: the default
  std::vector<help_node> children;  // category: subarguments; list: values
};

inline help_node cat(const std::string& name, const std::string& desc,
                     std::vector<help_node> children = {}) {
  return {help_node::category, name, desc, "", "", "", std::move(children)};
}

inline help_node lst(const std::string& name, const std::string& desc,
                     const std::string& dflt, std::vector<help_node> values) {
  return {help_node::list, name, desc, "list element", "", dflt,
          std::move(values)};
}

inline help_node val(const std::string& name, const std::string& type,
                     const std::string& desc, const std::string& validity,
                     const std::string& dflt) {
  return {help_node::value, name, desc, type, validity, dflt, {}};
}

inline help_node flag(const std::string& name, const std::string& desc,
                      const std::string& dflt) {
  return val(name, "boolean", desc, "[0, 1, false, true]", dflt);
}

inline help_node pos_int(const std::string& name, const std::string& desc,
                         const std::string& dflt) {
  return val(name, "int", desc, "0 < " + name, dflt);
}

inline std::vector<help_node> lbfgs_tolerances() {
  return {
      val("init_alpha", "double", "Line search step size for first iteration",
          "0 < init_alpha", "0.001"),
      val("tol_obj", "double", "Convergence tolerance on absolute changes in "
          "objective function value", "0 <= tol_obj", "1e-12"),
      val("tol_rel_obj", "double", "Convergence tolerance on relative changes "
          "in objective function value", "0 <= tol_rel_obj", "10000"),
      val("tol_grad", "double", "Convergence tolerance on the norm of the "
          "gradient", "0 <= tol_grad", "1e-08"),
      val("tol_rel_grad", "double", "Convergence tolerance on the relative "
          "norm of the gradient", "0 <= tol_rel_grad", "1e+07"),
      val("tol_param", "double", "Convergence tolerance on changes in "
          "parameter value", "0 <= tol_param", "1e-08"),
  };
}

inline std::vector<help_node> with_history(std::vector<help_node> v) {
  v.push_back(val("history_size", "int", "Amount of history to keep for "
                  "L-BFGS", "0 < history_size", "5"));
  return v;
}

// The whole tree: the method list first, then the shared sections.
inline std::vector<help_node> help_tree(bool threads_on, bool opencl_on) {
  std::vector<help_node> pathfinder = with_history(lbfgs_tolerances());
  for (auto& n : std::vector<help_node>{
           pos_int("num_psis_draws", "Number of draws from PSIS sample",
                   "1000"),
           pos_int("num_paths", "Number of single pathfinders", "4"),
           flag("save_single_paths", "Output single-path pathfinder draws "
                "(refused by the stanbhm launcher when 1)", "0"),
           flag("psis_resample", "If true, perform psis resampling on "
                "samples returned from individual pathfinders", "1"),
           flag("calculate_lp", "If true, individual pathfinders calculate "
                "the log density of each draw", "1"),
           pos_int("max_lbfgs_iters", "Maximum number of LBFGS iterations",
                   "1000"),
           pos_int("num_draws", "Number of approximate posterior draws",
                   "1000"),
           pos_int("num_elbo_draws", "Number of Monte Carlo draws to "
                   "evaluate ELBO", "25")})
    pathfinder.push_back(n);

  help_node method = lst(
      "method", "Analysis method (Note that method= is optional)", "sample",
      {cat("sample", "Bayesian inference with Markov Chain Monte Carlo",
           {val("num_samples", "int", "Number of sampling iterations",
                "0 <= num_samples", "1000"),
            val("num_warmup", "int", "Number of warmup iterations",
                "0 <= num_warmup", "1000"),
            flag("save_warmup", "Stream warmup samples to output?", "0"),
            pos_int("thin", "Period between saved samples", "1"),
            cat("adapt", "Warmup Adaptation",
                {flag("engaged", "Adaptation engaged?", "1"),
                 val("gamma", "double", "Adaptation regularization scale",
                     "0 < gamma", "0.05"),
                 val("delta", "double", "Adaptation target acceptance "
                     "statistic", "0 < delta < 1", "0.8"),
                 val("kappa", "double", "Adaptation relaxation exponent",
                     "0 < kappa", "0.75"),
                 val("t0", "double", "Adaptation iteration offset", "0 < t0",
                     "10"),
                 val("init_buffer", "unsigned int", "Width of initial fast "
                     "adaptation interval", "0 <= init_buffer", "75"),
                 val("term_buffer", "unsigned int", "Width of final fast "
                     "adaptation interval", "0 <= term_buffer", "50"),
                 val("window", "unsigned int", "Initial width of slow "
                     "adaptation interval", "0 <= window", "25"),
                 flag("save_metric", "Save the adapted step size and "
                      "metric as <output>_metric.json", "0")}),
            lst("algorithm", "Sampling algorithm", "hmc",
                {cat("hmc", "Hamiltonian Monte Carlo",
                     {lst("engine", "Engine for Hamiltonian Monte Carlo "
                          "(engine=static is refused by the stanbhm "
                          "launcher)", "nuts",
                          {cat("nuts", "The No-U-Turn Sampler",
                               {pos_int("max_depth", "Maximum tree depth",
                                        "10")})}),
                      lst("metric", "Geometry of base manifold", "diag_e",
                          {cat("unit_e", "Euclidean manifold with unit "
                               "metric"),
                           cat("diag_e", "Euclidean manifold with diag "
                               "metric"),
                           cat("dense_e", "Euclidean manifold with dense "
                               "metric")}),
                      val("metric_file", "string", "Input file with "
                          "precomputed Euclidean metric", "Path to existing "
                          "file", "\"\""),
                      val("stepsize", "double", "Step size for discrete "
                          "evolution", "0 < stepsize", "1"),
                      val("stepsize_jitter", "double", "Uniformly random "
                          "jitter of the stepsize, in percent",
                          "0 <= stepsize_jitter <= 1", "0")}),
                 cat("fixed_param", "Fixed Parameter Sampler")}),
            pos_int("num_chains", "Number of chains", "1")}),
       cat("optimize", "Point estimation",
           {lst("algorithm", "Optimization algorithm", "lbfgs",
                {cat("bfgs", "BFGS with linesearch", lbfgs_tolerances()),
                 cat("lbfgs", "LBFGS with linesearch",
                     with_history(lbfgs_tolerances())),
                 cat("newton", "Newton's method")}),
            flag("jacobian", "When true, include change-of-variables "
                 "adjustment for constraining parameter transforms", "0"),
            pos_int("iter", "Total number of iterations", "2000"),
            flag("save_iterations", "Stream optimization progress to "
                 "output?", "0")}),
       cat("variational", "Variational inference",
           {lst("algorithm", "Variational inference algorithm", "meanfield",
                {cat("meanfield", "mean-field approximation"),
                 cat("fullrank", "full-rank covariance")}),
            pos_int("iter", "Maximum number of ADVI iterations.", "10000"),
            pos_int("grad_samples", "Number of Monte Carlo draws for "
                    "computing the gradient.", "1"),
            pos_int("elbo_samples", "Number of Monte Carlo draws for estimate "
                    "of ELBO.", "100"),
            val("eta", "double", "Stepsize scaling parameter.", "0 < eta",
                "1"),
            cat("adapt", "Eta Adaptation for Variational Inference",
                {flag("engaged", "Boolean flag for eta adaptation.", "1"),
                 pos_int("iter", "Number of iterations for eta adaptation.",
                         "50")}),
            val("tol_rel_obj", "double", "Relative tolerance parameter for "
                "convergence.", "0 < tol_rel_obj", "0.01"),
            pos_int("eval_elbo", "Number of iterations between ELBO "
                    "evaluations", "100"),
            pos_int("output_samples", "Number of approximate posterior output "
                    "draws to save.", "1000")}),
       cat("diagnose", "Model diagnostics",
           {lst("test", "Diagnostic test", "gradient",
                {cat("gradient", "Check model gradient against finite "
                     "differences",
                     {val("epsilon", "double", "Finite difference step size",
                          "0 < epsilon", "1e-06"),
                      val("error", "double", "Error threshold", "0 < error",
                          "1e-06")})})}),
       cat("generate_quantities", "Generate quantities of interest",
           {val("fitted_params", "string", "Input file of sample of fitted "
                "parameter values for model conditioned on data",
                "Path to existing file", "\"\""),
            val("num_chains", "int", "Number of chains (the stanbhm launcher "
                "runs one per process)", "num_chains = 1", "1")}),
       cat("pathfinder", "Pathfinder algorithm", pathfinder),
       cat("log_prob", "Return the log density up to a constant and its "
           "gradients, given supplied parameters",
           {val("unconstrained_params", "string", "Input file (JSON or R "
                "dump) of parameter values on unconstrained scale",
                "Path to existing file", "\"\""),
            val("constrained_params", "string", "Input file (JSON, R dump or "
                "Stan CSV) of parameter values on constrained scale",
                "Path to existing file", "\"\""),
            flag("jacobian", "When true, include change-of-variables "
                 "adjustment for constraining parameter transforms", "1")}),
       cat("laplace", "Sample from a Laplace approximation",
           {val("mode", "string", "A specification of a mode on the "
                "constrained scale for all model parameters, either in JSON "
                "or CSV format.", "Path to existing file", "\"\""),
            flag("jacobian", "When true, include change-of-variables "
                 "adjustment for constraining parameter transforms", "1"),
            pos_int("draws", "Number of draws from the laplace "
                    "approximation", "1000"),
            flag("calculate_lp", "If true, calculate the log probability of "
                 "each draw", "1")})});

  std::vector<help_node> tree{
      method,
      val("id", "int", "Unique process identifier", "id >= 0", "1"),
      cat("data", "Input data options",
          {val("file", "string", "Input data file", "Path to existing file",
               "\"\"")}),
      val("init", "string", "Initialization method: \"x\" initializes "
          "randomly between [-x, x], \"0\" initializes to 0, anything else "
          "identifies a file of values", "", "\"2\""),
      cat("random", "Random number configuration",
          {val("seed", "long long int", "Random number generator seed",
               "non-negative integer < 4294967296 or -1 to generate seed "
               "from system time", "-1")}),
      cat("output", "File output options",
          {val("file", "string", "Output file", "Path to existing file",
               "output.csv"),
           val("diagnostic_file", "string", "Auxiliary output file for "
               "diagnostic information", "Path to existing file", "\"\""),
           val("refresh", "int", "Number of iterations between screen "
               "updates", "0 <= refresh", "100"),
           val("sig_figs", "int", "The number of significant figures used "
               "for the output CSV files.", "0 <= integer <= 18 or -1 to use "
               "the default number of significant figures", "-1"),
           val("profile_file", "string", "File to store profiling "
               "information", "Valid path and write access to the folder",
               "profile.csv"),
           flag("save_cmdstan_config", "Save cmdstan config as JSON (refused "
                "by the stanbhm launcher when 1)", "0")}),
      threads_on
          ? val("num_threads", "int", "Number of threads available to the "
                "program.", "num_threads > 0 || num_threads == -1",
                "1 or the value of the STAN_NUM_THREADS environment variable "
                "if set.")
          : val("num_threads", "int", "Number of threads available to the "
                "program. To use this argument, re-compile this model with "
                "STAN_THREADS=true.", "num_threads == 1", "1")};
  if (opencl_on)
    tree.push_back(cat(
        "opencl", "OpenCL options",
        {val("device", "int", "ID of the OpenCL device to use",
             "device >= 0 or -1 to use the compile-time device ID", "-1"),
         val("platform", "int", "ID of the OpenCL platform to use",
             "platform >= 0 or -1 to use the compile-time platform ID",
             "-1")}));
  return tree;
}

inline void print_node(std::ostream& out, const help_node& n, int depth,
                       bool recurse) {
  std::string in(2 * depth, ' ');
  if (n.kind == help_node::category) {
    out << in << n.name << "\n" << in << "  " << n.description << "\n";
    if (!n.children.empty()) {
      out << in << "  Valid subarguments:";
      for (size_t i = 0; i < n.children.size(); ++i)
        out << (i ? ", " : " ") << n.children[i].name;
      out << "\n";
    }
    out << "\n";
    if (recurse)
      for (const auto& c : n.children)
        print_node(out, c, depth + 1, true);
    return;
  }
  out << in << n.name << "=<" << n.type << ">\n"
      << in << "  " << n.description << "\n";
  if (n.kind == help_node::list) {
    out << in << "  Valid values:";
    for (size_t i = 0; i < n.children.size(); ++i)
      out << (i ? ", " : " ") << n.children[i].name;
    out << "\n";
  } else if (!n.validity.empty()) {
    out << in << "  Valid values: " << n.validity << "\n";
  }
  out << in << "  Defaults to " << n.dflt << "\n\n";
  if (recurse)
    for (const auto& c : n.children)
      print_node(out, c, depth + 1, true);
}

inline void print_usage(std::ostream& out, const std::string& exe,
                        const std::vector<help_node>& tree) {
  auto row = [&out](const std::string& name, const std::string& desc) {
    out << std::left << std::setw(22) << "  " + name << desc << "\n";
  };
  out << "Usage: " << exe << " <arg1> <subarg1_1> ... <subarg1_m> ... <arg_n> "
      << "<subarg_n_1> ... <subarg_n_m>\n\n"
      << "Begin by selecting amongst the following inference methods and "
         "diagnostics,\n";
  for (const auto& m : tree.front().children)
    row(m.name, m.description);
  out << "\nOr see help information with\n";
  row("help", "Prints help");
  row("help-all", "Prints entire argument tree");
  out << "\nAdditional configuration available by specifying\n";
  for (size_t i = 1; i < tree.size(); ++i)
    row(tree[i].name, tree[i].description);
  out << "\nSee " << exe << " <arg1> [ help | help-all ] for details on "
      << "individual arguments.\n"
      << "(A CmdStan-compatible launcher built by stanbhm; `info` prints its "
      << "build flags.)\n"
      << std::flush;
}

// Depth-first search for the section or method named `name`.
inline const help_node* find_node(const std::vector<help_node>& nodes,
                                  const std::string& name) {
  for (const auto& n : nodes) {
    if (n.name == name && n.kind != help_node::value)
      return &n;
    if (const help_node* hit = find_node(n.children, name))
      return hit;
  }
  return nullptr;
}

// `help` / `help-all` after `topic` ("" = the whole command line). `method`
// narrows the search, so `variational adapt help` finds variational's adapt.
inline void print_help(std::ostream& out, const std::string& exe,
                       const std::string& topic, const std::string& method,
                       bool all, bool threads_on, bool opencl_on) {
  auto tree = help_tree(threads_on, opencl_on);
  if (topic.empty()) {
    if (all)
      for (const auto& n : tree)
        print_node(out, n, 1, true);
  } else {
    const help_node* scope = find_node(tree, method);
    const help_node* n = scope && topic != method
                             ? find_node(scope->children, topic)
                             : nullptr;
    if (!n)
      n = find_node(tree, topic);
    if (n)
      print_node(out, *n, 0, all);
  }
  print_usage(out, exe, tree);
}

}  // namespace stanbhm

#endif
