"""Params are checked once, when built: every bad value is refused there with a message naming it,
and a built Params cannot be changed into a bad one afterwards."""
import dataclasses

import pytest
from artcloak import InputError, Params


@pytest.mark.parametrize("values, words", [
    ({"intensity": "extreme"}, "intensity must be one of low, default, high"),
    ({"quality": "slow"}, "quality must be one of fast, default, max"),
    ({"target": ""}, "target must be a built-in texture name or an image path"),
    ({"robustness": "jpeg,rotate"}, "unknown robustness transform"),
    ({"seed": -1}, "seed must be an integer"),
    ({"seed": 2**31}, "seed must be an integer"),
    ({"seed": "7"}, "seed must be an integer"),
])
def test_bad_values_are_refused_when_built(values, words):
    with pytest.raises(InputError, match=words):
        Params(**values)
    with pytest.raises(InputError, match=words):
        Params.from_dict(values)


def test_unknown_names_are_refused():
    with pytest.raises(InputError, match="unknown parameter"):
        Params.from_dict({"intensty": "high"})


def test_a_built_params_stays_valid():
    p = Params(quality="fast")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.seed = -1
    with pytest.raises(InputError, match="seed"):
        dataclasses.replace(p, seed=-1)
    assert dataclasses.replace(p, seed=3) == Params(quality="fast", seed=3)
