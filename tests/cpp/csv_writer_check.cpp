// Writes the same rows through Stan's unique_stream_writer and the launcher's
// csv_writer, at every precision CmdStan accepts (-1 leaves the stream's 6),
// and exits 1 naming the first row whose bytes differ.
#include "csv_writer.hpp"

#include <stan/callbacks/unique_stream_writer.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename Writer>
std::string write_all(const std::string& path, int precision,
                      const std::vector<std::vector<double>>& rows) {
  {
    auto out = std::make_unique<std::ofstream>(path);
    if (precision > -1)
      out->precision(precision);
    Writer w(std::move(out), "# ");
    w(std::vector<std::string>{"lp__", "a", "b.1", "b.2"});
    w(std::string("Adaptation terminated"));
    w();
    for (const auto& row : rows)
      w(row);
    Eigen::VectorXd v(3);
    v << 1.5, -2.25e-7, 3e20;
    w(v);
    Eigen::RowVectorXd r(2);
    r << 0.1, 7;
    w(r);
    Eigen::MatrixXd m(2, 2);
    m << 1, 2, 3, 4.123456789;
    w(m);
  }
  return slurp(path);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<double>> rows = {
      {0.0, -0.0, 1.0, -1.0},
      {inf, -inf, nan, -nan},
      {1e-300, 4.9e-324, 1.7976931348623157e308, -2.2250738585072014e-308},
      {123456.5, 1234567.0, 0.000123456789, 0.1},
      {999999.5, 9.9999995, 99999.95, 0.5},
      {1e15, 1e16, 1e21, 12345678901234567890.0},
      {3.0, 15.0, 1023.0, 2.5},
  };
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> power(-40, 40);
  for (int i = 0; i < 2000; ++i) {
    std::vector<double> row;
    for (int j = 0; j < 4; ++j)
      row.push_back(normal(rng) * std::pow(10.0, power(rng)));
    rows.push_back(row);
  }
  using stan_writer = stan::callbacks::unique_stream_writer<std::ofstream>;
  for (int precision = -1; precision <= 18; ++precision) {
    std::string want = write_all<stan_writer>(dir + "/stan.csv", precision, rows);
    std::string got = write_all<stanbhm::csv_writer>(dir + "/launcher.csv", precision, rows);
    if (want != got) {
      std::size_t at = 0;
      while (at < want.size() && at < got.size() && want[at] == got[at])
        ++at;
      std::cerr << "precision " << precision << ": bytes differ at " << at << ": stan '"
                << want.substr(at, 40) << "' launcher '" << got.substr(at, 40) << "'\n";
      return 1;
    }
  }
  std::cout << "identical\n";
  return 0;
}
