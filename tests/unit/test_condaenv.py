"""How conda's answer decides a submission's fate (the probe itself runs in
tests/e2e/test_conda.py): refuse only on a clear answer."""

from __future__ import annotations

import json

from gflow.condaenv import NO_CONDA, NOT_AN_ENV, SHOWN, Probe, problem


def listing(*names: str) -> Probe:
    envs = ["/opt/conda", *(f"/opt/conda/envs/{n}" for n in names)]
    return Probe(0, json.dumps({"envs": envs}).encode())


def test_a_listed_environment_and_base_are_accepted() -> None:
    assert problem("torch", listing("torch")) is None
    assert problem("base", listing()) is None
    assert problem("root", listing()) is None


def test_an_unlisted_environment_is_refused_with_the_known_ones() -> None:
    found = problem("myenv", listing("torch", "jax"))
    assert found == (
        "--conda-env 'myenv': no such conda environment (conda env list shows: base, jax, torch)"
    )
    many = problem("x", listing(*(f"env{i:02}" for i in range(SHOWN + 3))))
    assert many is not None and many.endswith(f"env{SHOWN - 1:02}, ...)")


def test_no_conda_is_refused_for_names_and_paths() -> None:
    for name in ("myenv", "./envs/x", "base"):
        found = problem(name, Probe(NO_CONDA))
        assert found is not None and f"'{name}'" in found and "conda was not found" in found


def test_a_path_is_judged_by_its_conda_meta() -> None:
    assert problem("./envs/x", Probe(0)) is None
    assert problem("~/envs/x", Probe(NOT_AN_ENV)) is not None


def test_an_unclear_answer_is_not_a_refusal() -> None:
    for unclear in (
        Probe(None),  # no answer in time, or too long a one
        Probe(1, b"CondaError: something broke"),
        Probe(0, b"not json"),
        Probe(0, b'{"envs": "nope"}'),
        Probe(0, b"[1, 2]"),
    ):
        assert problem("myenv", unclear) is None, unclear
