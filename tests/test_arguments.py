"""Model.fit's arguments: CmdStanPy's names, other packages' spellings refused by name,
all before anything compiles."""

from __future__ import annotations

import pytest

import stanbhm as sb
from stanbhm import arguments


@pytest.fixture
def never_compiles(eight_schools_df, monkeypatch):
    model = sb.Model("y | se(sigma) ~ 1 + (1 | school)", eight_schools_df)

    def compile_():
        raise AssertionError("compiled before the arguments were checked")

    monkeypatch.setattr(model, "compile", compile_)
    return model


@pytest.mark.parametrize(("given", "message"), [
    ({"draws": 500}, "fit(method='sample') has no argument 'draws'; CmdStanPy's name for "
                     "draws per chain after warmup is 'iter_sampling'"),
    ({"warmup": 500}, "fit(method='sample') has no argument 'warmup'; CmdStanPy's name for "
                      "warmup iterations per chain is 'iter_warmup'"),
    ({"cores": 4}, "fit(method='sample') has no argument 'cores'; CmdStanPy's name for "
                   "chains run at once is 'parallel_chains'"),
    ({"target_accept": 0.9}, "fit(method='sample') has no argument 'target_accept'; "
                             "CmdStanPy's name for the target acceptance rate of warmup is "
                             "'adapt_delta'"),
    ({"tune": 500}, "CmdStanPy's name for warmup iterations per chain is 'iter_warmup'"),
    ({"num_samples": 500}, "CmdStanPy's name for draws per chain after warmup is "
                           "'iter_sampling'"),
    ({"random_seed": 1}, "CmdStanPy's name for the random seed is 'seed'"),
    ({"adapt_dleta": 0.9}, "fit(method='sample') has no argument 'adapt_dleta'; did you mean "
                           "'adapt_delta'?"),
    ({"data": {}}, "fit(method='sample') does not take 'data': Model.fit passes the "
                   "model's own data"),
])
def test_other_spellings_name_the_right_argument(never_compiles, given, message):
    with pytest.raises(TypeError) as error:
        never_compiles.fit(**given)
    assert message in str(error.value)


@pytest.mark.parametrize(("method", "given", "message"), [
    ("sample", {"chains": 0}, "fit(method='sample'): chains=0 must be at least 1"),
    ("sample", {"adapt_delta": 1.2}, "fit(method='sample'): adapt_delta=1.2 must be in "
                                     "[1e-09, 1)"),
    ("sample", {"iter_sampling": 0}, "iter_sampling=0 must be at least 1"),
    ("pathfinder", {"draws": 0}, "fit(method='pathfinder'): draws=0 must be at least 1"),
])
def test_out_of_range_values_are_refused_before_the_compile(never_compiles, method, given,
                                                            message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        never_compiles.fit(method=method, **given)


def test_draws_is_cmdstanpys_name_outside_mcmc():
    assert arguments.check("laplace", {"draws": 100}) == {"draws": 100}
    assert arguments.check("pathfinder", {"draws": 100, "show_progress": False}) == \
        {"draws": 100}  # no progress bars: the argument is accepted and has no effect
    with pytest.raises(TypeError, match="CmdStanPy's name for draws returned is 'draws'"):
        arguments.check("variational", {"num_draws": 100})


def test_cmdstanpys_own_names_pass_through():
    given = {"chains": 2, "iter_warmup": 100, "iter_sampling": 100, "adapt_delta": 0.9,
             "parallel_chains": 2, "seed": 1, "show_progress": False}
    assert arguments.check("sample", given) == given
