"""What stays on the console around a fit."""

from __future__ import annotations

import logging
import sys

from stanbhm.advice import advice
from stanbhm.console import quiet, rejections_after_warmup

CONSOLE = """method = sample (Default)
Iteration:    1 / 2000 [  0%]  (Warmup)
Informational Message: The current Metropolis proposal is about to be rejected because of the following issue:
Exception: lkj_corr_cholesky_lpdf: Random variable[2] is 0, but must be positive! (in 'model.stan', line 40, column 2 to column 38)
Iteration: 1000 / 2000 [ 50%]  (Warmup)
Iteration: 1001 / 2000 [ 50%]  (Sampling)
Informational Message: The current Metropolis proposal is about to be rejected because of the following issue:
Exception: gamma_lpdf: Random variable is inf, but must be positive finite! (in 'model.stan', line 52, column 2 to column 30)
Iteration: 2000 / 2000 [100%]  (Sampling)
"""  # noqa: E501


def test_only_rejections_after_warmup_count():
    assert rejections_after_warmup(CONSOLE) == [
        "gamma_lpdf: Random variable is inf, but must be positive finite! (in 'model.stan', "
        "line 52, column 2 to column 30)"]
    assert rejections_after_warmup(CONSOLE.split("Iteration: 1001")[0]) == []


def test_rejections_after_warmup_become_one_piece_of_advice():
    numbers = {"divergences": 0, "treedepth_hits": 0, "rhat_max": 1.0,
               "ess_bulk_min": 1000.0, "ess_tail_min": 1000.0}
    said = advice(numbers, 4, 4000, 10, [1.0] * 4, {}, None, ["gamma_lpdf: bad", "again"])
    assert said == ["2 proposals rejected after warmup (first: gamma_lpdf: bad): the sampler "
                    "reached values where the model is not defined; check the priors' "
                    "support and the data for extreme values"]


def test_quiet_drops_info_repeats_and_blank_padding(capsys, caplog):
    logger = logging.getLogger("cmdstanpy")
    caplog.set_level(logging.DEBUG, logger="cmdstanpy")
    with quiet():
        logger.info("CmdStan start processing")
        logger.warning("Non-fatal error during sampling:\nException: ...")
        logger.warning("Some chains may have failed to converge.\n\tChain 1 had 3 divergent")
        logger.warning("a warning stanbhm does not repeat")
        sys.stdout.write(" " * 320)
        sys.stdout.write("\n")
        print("a result")
    assert [r.getMessage() for r in caplog.records] == ["a warning stanbhm does not repeat"]
    assert capsys.readouterr().out == "a result\n"
    logger.info("outside")  # the filter is gone afterwards
    assert caplog.records[-1].getMessage() == "outside"


def test_importing_stanbhm_and_arviz_prints_nothing(tmp_path):
    """ArviZ 0.23's once-a-day FutureWarning about its 1.0 refactor (a fresh HOME has no
    stamp of today's) stays out of a stanbhm session."""
    import os
    import subprocess

    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", "import stanbhm, arviz"], env=env,
                          capture_output=True, text=True, check=True)
    assert proc.stderr == ""
