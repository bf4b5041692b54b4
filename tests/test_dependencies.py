"""The transformers pin covers exactly the versions whose API prosv uses, and generation uses it without
deprecation warnings (transformers 5.24 renamed `past_key_values` to `cache`; the old name goes in 5.40)."""

from __future__ import annotations

import inspect
import tomllib
import warnings
from pathlib import Path

import transformers
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _pin() -> Requirement:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return next(Requirement(d) for d in deps if Requirement(d).name == "transformers")


def test_the_pin_admits_the_installed_version_and_no_version_without_cache():
    spec = _pin().specifier
    assert Version(transformers.__version__) in spec, (transformers.__version__, str(spec))
    # checked against the published wheels: LlamaModel.forward takes `past_key_values` up to 5.23 and
    # `cache` from 5.24, where `cache=` would be swallowed by **kwargs and decoding would run uncached
    assert "5.23.0" not in spec and "5.24.0" in spec
    assert "6.0.0" not in spec, "a major version may drop `cache` again: not admitted untested"
    from transformers import LlamaModel

    assert "cache" in inspect.signature(LlamaModel.forward).parameters


def test_generation_raises_no_deprecation_warning(tiny_model, tokenizer):
    from prosv.generation import Steering, generate
    from prosv.interventions import SteeringVectors

    module = SteeringVectors.initialise(1, tiny_model.config.hidden_size, c_alpha=1.0, c_v=1.0, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for positions in ("p2+s2", "all"):
            generate(tiny_model, tokenizer, ["Hi", "Tell me more."], Steering(module, 1, positions, [0, 0]), 5)
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert not [m for m in messages if "past_key_values" in m or "FutureWarning" in m or "Deprecat" in m], messages
