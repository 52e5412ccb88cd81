// File handling for the launcher: data/init contexts, Stan CSV input, and the
// per-chain file naming CmdStan uses when one process runs several chains.
#ifndef STANBHM_LAUNCHER_IO_HPP
#define STANBHM_LAUNCHER_IO_HPP

#include "args.hpp"

#include <stan/io/dump.hpp>
#include <stan/io/empty_var_context.hpp>
#include <stan/io/json/json_data.hpp>
#include <stan/io/var_context.hpp>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace stanbhm {

inline bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size()
         && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "dir/out.csv", 3 -> "dir/out_3.csv" (CmdStan's rule for num_chains > 1).
inline std::string with_chain_suffix(const std::string& path, long id) {
  auto slash = path.find_last_of('/');
  auto dot = path.find_last_of('.');
  std::string suffix = "_" + std::to_string(id);
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
    return path + suffix;
  return path.substr(0, dot) + suffix + path.substr(dot);
}

// CmdStan's rule for naming an output file: split `path` into base and
// extension (the extension starts at the last '.' after the last '/'), then
// write base + tag + ("_<id>" when the process runs several chains) + ext.
// CSV outputs keep the user's extension (".csv" when there is none); JSON
// outputs always end in ".json", so `diagnostic_file=d.csv` with laplace
// becomes d.json.
inline std::string output_name(const std::string& path, const std::string& tag,
                               const std::string& type, long id,
                               bool several) {
  auto slash = path.find_last_of('/');
  auto dot = path.find_last_of('.');
  std::string base = path, ext;
  if (dot != std::string::npos
      && (slash == std::string::npos || dot > slash)
      && dot + 1 < path.size()) {
    base = path.substr(0, dot);
    ext = path.substr(dot);
  }
  if (type != ".csv" || ext.empty())
    ext = type;
  return base + tag + (several ? "_" + std::to_string(id) : "") + ext;
}

// Per-chain input file: the suffixed one if it exists, else the shared one.
inline std::string chain_input_file(const std::string& path, long id,
                                    bool several_chains) {
  if (several_chains) {
    std::string own = with_chain_suffix(path, id);
    if (file_exists(own))
      return own;
  }
  return path;
}

// JSON (or R dump, by extension) file as a var_context; empty path -> empty.
inline std::shared_ptr<stan::io::var_context> load_context(
    const std::string& path) {
  if (path.empty())
    return std::make_shared<stan::io::empty_var_context>();
  std::ifstream in(path);
  if (!in.good())
    throw usage_error("cannot read file '" + path + "'");
  if (ends_with(path, ".json"))
    return std::make_shared<stan::json::json_data>(in);
  if (ends_with(path, ".R") || ends_with(path, ".r"))
    return std::make_shared<stan::io::dump>(in);
  throw usage_error("file '" + path
                    + "' must end in .json (JSON) or .R (R dump)");
}

// A Stan CSV file reduced to what the launcher reads back: column names and
// the numeric rows (comment lines skipped).
struct stan_csv {
  std::vector<std::string> names;
  std::vector<std::vector<double>> rows;

  static stan_csv read(const std::string& path) {
    std::ifstream in(path);
    if (!in.good())
      throw usage_error("cannot read Stan CSV file '" + path + "'");
    stan_csv csv;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#')
        continue;
      std::vector<std::string> cells;
      std::stringstream ss(line);
      std::string cell;
      while (std::getline(ss, cell, ','))
        cells.push_back(cell);
      if (csv.names.empty()) {
        csv.names = cells;
        continue;
      }
      if (cells.size() != csv.names.size())
        throw usage_error("Stan CSV file '" + path + "' has a row of "
                          + std::to_string(cells.size()) + " values under "
                          + std::to_string(csv.names.size()) + " columns");
      std::vector<double> row;
      row.reserve(cells.size());
      for (const auto& c : cells)
        row.push_back(std::stod(c));
      csv.rows.push_back(std::move(row));
    }
    if (csv.names.empty())
      throw usage_error("Stan CSV file '" + path + "' has no header line");
    return csv;
  }

  // Rows restricted to the named columns, in that order.
  std::vector<std::vector<double>> select(
      const std::vector<std::string>& wanted, const std::string& path) const {
    std::vector<size_t> idx;
    for (const auto& w : wanted) {
      size_t j = 0;
      while (j < names.size() && names[j] != w)
        ++j;
      if (j == names.size())
        throw usage_error("Stan CSV file '" + path + "' lacks column '" + w
                          + "'");
      idx.push_back(j);
    }
    std::vector<std::vector<double>> out;
    for (const auto& r : rows) {
      std::vector<double> v;
      for (auto j : idx)
        v.push_back(r[j]);
      out.push_back(std::move(v));
    }
    return out;
  }
};

}  // namespace stanbhm

#endif
