"""The compile cache, concurrent builds, compiler errors and toolchain lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stanbhm import toolchain
from stanbhm.toolchain import cache, locate, opencl


@pytest.mark.user_build  # normal_model is a user build
def test_cache_hit_starts_no_compiler_process(normal_model, started_processes):
    """A second request for the same program must not run make, stanc or g++."""
    code = Path(normal_model.stan_file).read_text()
    started = started_processes
    again = toolchain.compile_model(code, cpp_options={"STAN_THREADS": "true"})
    assert again.exe_file == normal_model.exe_file
    tools = {Path(cmd[0]).name for cmd in started}
    assert not tools & {"make", "stanc", "g++", "c++", "cc1plus"}, started


def test_cache_key_depends_on_code_and_options(cmdstan):
    base = cache.cache_key("model {}", {}, {}, cmdstan)
    assert base == cache.cache_key("model {}", {}, {}, cmdstan)
    assert base != cache.cache_key("model { }", {}, {}, cmdstan)
    assert base != cache.cache_key("model {}", {"STAN_THREADS": "TRUE"}, {}, cmdstan)
    assert base != cache.cache_key("model {}", {}, {"O1": True}, cmdstan)
    assert cache.normalize_cpp_options({"STAN_THREADS": True}) == cache.normalize_cpp_options(
        {"STAN_THREADS": "TRUE"})
    assert cache.normalize_cpp_options({"STAN_THREADS": False}) == {}


def test_test_build_compiles_at_O1_into_cache_entries_of_its_own(cmdstan, monkeypatch):
    """STANBHM_TEST_BUILD=1 (conftest.py sets it) adds the optimization level, the
    compiler when it is not g++, and a launcher variant folder of their own to the make
    variables, and so to the cache key."""
    monkeypatch.setenv(cache.TEST_BUILD_ENV, "0")
    assert not cache.in_test_build() and cache.build_options_of_tests() == {}
    monkeypatch.setenv(cache.TEST_BUILD_ENV, "1")
    monkeypatch.setenv(cache.TEST_BUILD_CXX_ENV, "g++")
    gcc = cache.build_options_of_tests()
    assert gcc == {"BUILD": "$(TOOLCHAIN)/build/$(VARIANT)-O1", "O": "1"}
    monkeypatch.setenv(cache.TEST_BUILD_CXX_ENV, "clang++-15")
    clang = cache.build_options_of_tests()
    assert clang == {"BUILD": "$(TOOLCHAIN)/build/$(VARIANT)-O1-clang++-15", "O": "1",
                     "CXX": "clang++-15"}
    user = {"STAN_THREADS": "TRUE"}
    keys = {cache.cache_key("model {}", {**user, **extra}, {}, cmdstan)
            for extra in ({}, gcc, clang)}
    assert len(keys) == 3


def test_the_test_build_takes_a_clang_from_the_path(monkeypatch, tmp_path):
    """Without $STANBHM_TEST_CXX, the first clang++ of version 11 or later on the PATH;
    an older one, or none, leaves the makefile's g++."""
    monkeypatch.delenv(cache.TEST_BUILD_CXX_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cache.test_build_compiler() is None
    for name, version in (("clang++", "10.0.1"), ("clang++-16", "16.0.6")):
        fake = tmp_path / name
        fake.write_text(f"#!/bin/sh\necho {version}\n")
        fake.chmod(0o755)
    assert cache.test_build_compiler() == "clang++-16"


def test_a_compile_is_logged_with_the_test_that_asked(monkeypatch, tmp_path):
    log = tmp_path / "compiles.jsonl"
    monkeypatch.setenv(cache.COMPILE_LOG_ENV, str(log))
    cache._log_compile("a" * 64, 0.0, 0.0)
    cache._log_compile("b" * 64, 0.0, 0.0, failed=True)
    cache._log_hit("c" * 64)
    first, second, hit = (json.loads(line) for line in log.read_text().splitlines())
    assert first["key"] == "a" * 24 and first["failed"] is False and first["seconds"] > 0
    assert first["test"].startswith("tests/test_toolchain_cache.py::test_a_compile_is_logged")
    assert first["test_build"] is cache.in_test_build() and second["failed"] is True
    assert hit == {"hit": "c" * 24, "test": first["test"], "test_build": cache.in_test_build()}


def test_the_run_counts_each_program_in_the_first_file_that_asked_for_it():
    """A warm run's table: a program compiled or served by the cache is requested by the
    first file that asked for it and used by every file that did; a compile that failed
    is no program; the requested total is what a cold run would compile."""
    from conftest import per_file_table, requested_programs

    def test(name):
        return f"tests/test_{name}.py::test_x (call)"

    records = [{"hit": "p1", "test": test("a")}, {"hit": "p1", "test": test("b")},
               {"key": "p2", "seconds": 20.0, "cpu_s": 19.0, "test": test("b")},
               {"hit": "p2", "test": test("a")}, {"hit": "p3", "test": test("b")},
               {"key": "p4", "seconds": 5.0, "cpu_s": 5.0, "test": test("a"),
                "failed": True},
               {"cmdstan_s": 1.5, "test": test("a")}]
    assert requested_programs(records) == {"p1": [test("a"), test("b")],
                                           "p2": [test("b"), test("a")], "p3": [test("b")]}
    table = per_file_table({"tests/test_a.py": 3.0}, records)
    a, b = table["tests/test_a.py"], table["tests/test_b.py"]
    assert (a["requested"], a["used"], a["programs"]) == (1, 2, 0)
    assert (b["requested"], b["used"], b["programs"]) == (2, 3, 1)
    assert a["compile_s"] == 5.0 and b["compile_cpu_s"] == 19.0 and a["cmdstan_s"] == 1.5
    assert a["seconds"] == 3.0 and sum(r["requested"] for r in table.values()) == 3


@pytest.mark.slow
def test_a_test_build_program_runs_from_the_O1_variant(cmdstan, normal_problem,
                                                      normal_model):
    """A program compiled in the test build records its make variables, was linked
    against the launcher of its variant folder, computes the user build's log density
    and gradient, and samples."""
    code = (Path(__file__).resolve().parent / "stan" / "normal_mean.stan").read_text()
    assert cache.in_test_build()  # conftest.py
    exe = toolchain.compile_model(code, cpp_options={"STAN_THREADS": True})
    options = json.loads((Path(exe.exe_file).parent / "options.json").read_text())
    extra = cache.build_options_of_tests()
    assert options["cpp_options"] == {**extra, "STAN_THREADS": "TRUE"}
    folder = extra["BUILD"].replace("$(TOOLCHAIN)/build/$(VARIANT)", "base-threads")
    assert (cmdstan / "build" / folder / "main.o").exists()
    for point in ({"mu": -1.0, "tau": 0.2}, {"mu": 2.5, "tau": 4.0}):
        test_build, users = (program.log_prob(point, data=normal_problem.data, sig_figs=18)
                             for program in (exe, normal_model))
        assert test_build.to_numpy() == pytest.approx(users.to_numpy(), rel=1e-12)
    fit = exe.sample(data=normal_problem.data, chains=1, seed=3, show_progress=False)
    assert abs(fit.stan_variable("mu").mean() - normal_problem.post_mean) < 0.3


def test_stanc_error_carries_message_and_line(cmdstan):
    code = "parameters {\n  real mu;\n}\nmodel {\n  mu ~ normal(0, 1)\n}\n"
    with pytest.raises(toolchain.StanCompileError) as err:
        toolchain.compile_model(code)
    msg = str(err.value)
    assert err.value.stage == "stanc"
    assert "Syntax error" in msg
    assert "line 5" in msg or "line 6" in msg
    assert "mu ~ normal(0, 1)" in msg  # stanc quotes the offending code


def test_type_error_is_reported_by_stanc(cmdstan):
    code = "parameters {\n  real mu;\n}\nmodel {\n  mu ~ normal(0, undefined_name);\n}\n"
    with pytest.raises(toolchain.StanCompileError, match="undefined_name"):
        toolchain.compile_model(code)


@pytest.mark.slow
def test_concurrent_compiles_of_one_program_both_succeed(cmdstan, tmp_path):
    """Two processes compile the same new program at once: one exe, both usable."""
    nonce = os.urandom(4).hex()
    code = f"// concurrency test {nonce}\nparameters {{ real x; }}\nmodel {{ x ~ normal(0, 1); }}\n"
    script = textwrap.dedent(f"""
        import json, sys
        from stanbhm import toolchain
        m = toolchain.compile_model({code!r})
        print(json.dumps({{"exe": m.exe_file}}))
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    exes = {json.loads(out.strip().splitlines()[-1])["exe"] for out, _ in outs}
    assert len(exes) == 1
    exe = Path(exes.pop())
    folder = exe.parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["model", "model.hpp", "model.stan", "options.json"])
    siblings = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    assert siblings == []  # no staging folder left behind
    info = subprocess.run([str(exe), "info"], capture_output=True, text=True, check=True)
    assert "stan_version_minor = 39" in info.stdout


def test_find_installation_prefers_argument_then_env(cmdstan, monkeypatch, tmp_path):
    assert toolchain.find_installation(cmdstan).source == "argument"
    monkeypatch.setenv("CMDSTAN", str(cmdstan))
    inst = toolchain.find_installation()
    assert inst.source == "CMDSTAN" and inst.path == cmdstan
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "nope"))
    with pytest.raises(toolchain.ToolchainError, match="does not exist"):
        toolchain.find_installation()


def test_offline_installation_looks_like_cmdstan(cmdstan):
    import cmdstanpy

    assert locate.read_version(cmdstan) == "2.39.0"
    assert cmdstanpy.cmdstan_version() == (2, 39)
    out = subprocess.run([str(cmdstan / "bin" / "stanc"), "--version"], capture_output=True,
                         text=True, check=True)
    assert "v2.39.0" in out.stdout


def test_cmdstanmodel_compiles_through_make_directly(cmdstan, tmp_path, monkeypatch):
    """CmdStanPy's own compile path works against the folder, as with real CmdStan: its
    make call builds a program without threads that runs. The make variables are the
    -O0 test build's, whose launcher variant without threads the log-density tests build
    too; the makefile's default variant (g++ -O3, no threads) would cost 200 s of CPU for
    this one test, and the fidelity tests build the user build's already."""
    import cmdstanpy

    # CmdStanPy leaves STAN_NUM_THREADS set after threaded runs; a model built
    # without threads must still run (on one thread).
    monkeypatch.setenv("STAN_NUM_THREADS", "4")
    monkeypatch.setenv(cache.TEST_BUILD_LEVEL_ENV, "0")

    stan = tmp_path / "tiny.stan"
    stan.write_text("parameters { real x; } model { x ~ normal(1, 2); }\n")
    model = cmdstanpy.CmdStanModel(stan_file=str(stan), stanc_options={"O1": True},
                                   cpp_options=cache.build_options_of_tests())
    assert Path(model.exe_file).exists()
    assert model.exe_info()["stan_version_minor"] == "39"
    fit = model.optimize(seed=1)
    assert fit.stan_variable("x") == pytest.approx(1.0, abs=1e-4)


def test_opencl_request_without_opencl_names_the_missing_piece(cmdstan, monkeypatch):
    monkeypatch.setattr(opencl, "header_path", lambda: None)
    with pytest.raises(toolchain.ToolchainError, match=r"CL/opencl\.hpp is missing"):
        toolchain.compile_model("model {}", cpp_options={"STAN_OPENCL": True})
    monkeypatch.setattr(opencl, "header_path", lambda: Path("/usr/include/CL/opencl.hpp"))
    monkeypatch.setattr(opencl, "_library", lambda: None)
    with pytest.raises(toolchain.ToolchainError, match=r"libOpenCL\.so is missing"):
        toolchain.compile_model("model {}", cpp_options={"STAN_OPENCL": True})


@pytest.mark.slow
@pytest.mark.opencl
@pytest.mark.skipif(opencl.opencl_missing() is not None, reason="no OpenCL here")
def test_opencl_build_runs_glm_on_an_opencl_device(cmdstan):
    """An OpenCL build (STAN_OPENCL, stanc's --use-opencl) of a program whose likelihood
    is normal_id_glm runs it on the device: the log density is the CPU build's, and
    optimizing recovers the coefficients. The programs are tests/test_opencl.py's (the
    same code and options, so the same executables)."""
    import numpy as np
    from test_opencl import rows

    import stanbhm as sb
    from stanbhm.toolchain.cache import program_text

    dev = opencl.devices()[0]
    df = rows()
    on_cpu = sb.Model("y ~ x1 + x2 + x3 + (1 | g)", df, rewrites="none")
    on_device = sb.Model("y ~ x1 + x2 + x3 + (1 | g)", df, rewrites="none",
                         opencl=(dev.platform_id, dev.device_id))
    assert program_text(on_device.stan_code()) == program_text(on_cpu.stan_code())
    assert "    y ~ normal_id_glm(Xc, eta, b, sigma);\n" in on_cpu.stan_code()
    cpp, stanc = on_device.build_options()
    assert cpp["STAN_OPENCL"] is True and stanc["use-opencl"] is True
    gpu = toolchain.compile_model(on_device.stan_code(), cpp_options=cpp, stanc_options=stanc)
    assert gpu.exe_info()["STAN_OPENCL"] == "true"
    cpu = toolchain.compile_model(on_cpu.stan_code(), cpp_options=on_cpu.build_options()[0],
                                  stanc_options=on_cpu.build_options()[1])
    data = on_cpu.stan_data()
    names = list(cpu.src_info()["parameters"])
    mode = cpu.optimize(data=data, seed=1)  # a point with every parameter the program has
    params = {n: np.asarray(mode.stan_variable(n)).tolist() for n in names}
    params["sigma"] *= 1.1  # off the mode a little
    with opencl.selected(dev):
        lp_gpu = gpu.log_prob(params, data=data)
        fit = gpu.optimize(data=data, seed=1)
    lp_cpu = cpu.log_prob(params, data=data)
    np.testing.assert_allclose(lp_gpu.to_numpy(), lp_cpu.to_numpy(), rtol=1e-8)
    assert fit.stan_variable("b")[0] == pytest.approx(0.5, abs=0.2)
    assert dev.platform_id >= 0


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_optimized_programs_keep_log_density_and_gradient(family):
    """stanc's O1, which stanbhm compiles its programs with, changes how the gradient is
    taped, not what it is: log density and gradient equal stanc's default build's at
    posterior draws (partially centered levels, gathers of level effects, a GLM kernel)."""
    import numpy as np

    import stanbhm as sb
    from stanbhm.datasets import election, election_formula

    # the optimized programs are others' too: the gaussian one is the benchmark rewrites
    # suite's plain election program at its test size (tests/test_bench.py), the
    # bernoulli one tests/test_metric.py's
    rows, covariates = {"gaussian": (600, 40), "bernoulli": (3000, 10)}[family]
    df, _ = election(seed=1, rows=rows, covariates=covariates, family=family)
    model = sb.Model(election_formula(covariates), df, family=family, rewrites="none",
                     log_lik=False, y_rep=False)
    assert model.build_options()[1] == toolchain.OPTIMIZED
    optimized = model.compile()
    plain = toolchain.compile_model(model.stan_code(), cpp_options=model.build_options()[0])
    draws = model.fit(chains=1, iter_warmup=100, iter_sampling=10, seed=5, advice=False,
                      show_progress=False).cmdstan
    names = list(optimized.src_info()["parameters"])
    data = model.stan_data()
    for i in range(10):
        point = {n: np.asarray(draws.stan_variable(n)[i]).tolist() for n in names}
        a, b = (exe.log_prob(params=point, data=data, sig_figs=18).to_numpy()[0]
                for exe in (optimized, plain))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


#: stanc 2.39's O1 turns ``m`` into one matrix node and then calls a ``rep_matrix`` that
#: Stan Math does not have: the C++ fails to compile, the program is fine at O0.
O1_FAILS = """\
parameters {
  real a;
  real b;
  matrix[3, 2] r;
}
model {
  matrix[3, 2] m = rep_matrix([a, b], 3) + r;
  matrix[3, 2] d = m - 1;
  target += -0.5 * dot_self(to_vector(d'));
  a ~ std_normal();
  b ~ std_normal();
  to_vector(r) ~ std_normal();
}
"""


@pytest.mark.slow
def test_a_failing_optimized_build_falls_back_once_and_is_remembered(tmp_path, monkeypatch,
                                                                     capsys):
    """A program whose O1 C++ does not compile is built without O1, with a message; the
    failure is cached, so the next compile starts no compiler at all."""
    import stanbhm as sb

    monkeypatch.setattr(cache, "models_dir", lambda: tmp_path)
    model = sb.Model("y ~ 1", __import__("pandas").DataFrame({"y": [0.1, 0.4, -0.2]}))
    monkeypatch.setattr(sb.Model, "stan_code", lambda self: O1_FAILS)
    exe = model.compile()
    assert "compiling without O1" in capsys.readouterr().err
    assert [p.name.endswith(".failed") for p in tmp_path.iterdir()].count(True) == 1
    fit = exe.optimize(seed=1)
    # the mode: a = 0.6 and each r = 0.2 (a + 3 (a + r - 1) = 0, r + (a + r - 1) = 0)
    assert fit.stan_variable("a") == pytest.approx(0.6, abs=1e-3)

    started: list[object] = []
    real_popen = subprocess.Popen

    class Recorder(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args, *a, **kw):
            started.append(args)
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    again = model.compile()
    assert again.exe_file == exe.exe_file and started == []


def test_first_use_announces_the_one_time_toolchain_build(monkeypatch, tmp_path):
    """With no CmdStan anywhere, the first compile builds the toolchain and says so, with
    its one-time cost, through the same progress callback as the compile (here the
    build stops at once on a missing wheel, so nothing is downloaded)."""
    monkeypatch.delenv("CMDSTAN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cmdstan
    monkeypatch.setenv("STANBHM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STANBHM_HTTPSTAN_WHEEL", str(tmp_path / "missing.whl"))
    said: list[str] = []
    with pytest.raises(toolchain.ToolchainError, match=r"missing\.whl is not a file"):
        toolchain.compile_model("parameters { real x; }", progress=said.append)
    assert said == [
        f"building the Stan toolchain into {tmp_path / 'home'}/cmdstan-2.39.0-httpstan-4.17.0: "
        "once per machine, about 3 minutes on 2 cores (`stanbhm toolchain install` does it "
        "ahead of the first fit)",
        "fetching httpstan 4.17.0 wheel (Stan 2.39.0)",
    ]
    assert not (tmp_path / "home" / "cmdstan-2.39.0-httpstan-4.17.0").exists()
