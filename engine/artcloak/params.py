"""The one parameter set of a protection run, declared once.

The CLI, the worker and both GIMP dialogs are generated from `schema()`; the plug-ins ship a copy of
it as JSON (`plugin/common/params.json`) that a test keeps identical to this file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import InputError

INTENSITIES = ("low", "default", "high")
# instant last: GIMP 2.10 scripts pass the quality as an index (0=fast 1=default 2=max), kept as they were
QUALITIES = ("fast", "default", "max", "instant")
BUILTIN_TARGETS = ("mosaic", "stripes", "noise", "checker")
ROBUSTNESS = ("jpeg", "resize", "crop", "flip", "noise", "blur")


# What kind of value a parameter takes (the schema's "kind"; the CLI and both GIMP fronts read it):
KINDS = {
    "choice": "one of `choices`, nothing else (a choice box)",
    "list": "a comma-separated list of `choices` (free text checked against them)",
    "text": "free text; `choices`, when given, are suggestions (a target may be an image path)",
    "int": "an integer from `min` to `max`",
}


def _meta(label: str, help: str, kind: str, choices: tuple = (), lo: float | None = None,
          hi: float | None = None, advanced: bool = False) -> dict[str, Any]:
    assert kind in KINDS, kind
    return {"label": label, "help": help, "kind": kind, "choices": choices, "min": lo, "max": hi,
            "advanced": advanced}


@dataclass(frozen=True)
class Params:
    """What to protect with. Every field has a working default: `Params()` is the default preset.

    Validated once, when built (a bad value is an InputError then); frozen, so a Params that exists
    is valid and nothing downstream needs to check it again."""

    intensity: str = field(default="default", metadata=_meta(
        "Intensity", "How much change the eye may see. low: PSNR 38 dB, flat areas at most 0.75/255 "
        "on average; default: PSNR 35 dB, flat areas 1/255; high: PSNR 32 dB and a faint, even grain "
        "of up to 2.5/255 on flat colour (the strongest protection, visible up close on flat art).",
        "choice", INTENSITIES))
    quality: str = field(default="default", metadata=_meta(
        "Quality", "How long to search: fast, default or max (slower, stronger); instant: a pre-trained "
        "cloak mixed for this image in a few seconds, weaker than default.", "choice", QUALITIES))
    target: str = field(default="mosaic", metadata=_meta(
        "Target", "What the models should see instead: a built-in texture "
        f"({', '.join(BUILTIN_TARGETS)}) or the path of an image file.", "text", BUILTIN_TARGETS,
        advanced=True))
    models: str = field(default="", metadata=_meta(
        "Models", "Comma-separated surrogate encoders to attack at once; empty = every installed one.",
        "text", advanced=True))
    robustness: str = field(default=",".join(ROBUSTNESS), metadata=_meta(
        "Robustness", "Comma-separated transforms the protection must survive: "
        f"{', '.join(ROBUSTNESS)}.", "list", ROBUSTNESS, advanced=True))
    seed: int = field(default=0, metadata=_meta(
        "Seed", "Random seed: the same seed and input give the same result.", "int",
        lo=0, hi=2**31 - 1, advanced=True))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise InputError naming the first bad value (called when built: see the class docstring)."""
        for f in fields(self):  # JSON from the worker may carry any type: a wrong one is the caller's error
            value, want = getattr(self, f.name), {"str": str, "int": int}[str(f.type)]
            if not isinstance(value, want) or isinstance(value, bool):
                raise InputError(f"{f.name} must be {'text' if want is str else 'an integer'}, "
                                 f"not {type(value).__name__} {value!r}")
        for name, allowed in (("intensity", INTENSITIES), ("quality", QUALITIES)):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if not self.target:
            raise InputError("target must be a built-in texture name or an image path")
        bad = [r for r in self.robustness_list if r not in ROBUSTNESS]
        if bad:
            raise InputError(f"unknown robustness transform(s) {', '.join(bad)}; "
                             f"known: {', '.join(ROBUSTNESS)}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise InputError(f"seed must be an integer from 0 to {2**31 - 1}")

    @property
    def model_list(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]

    @property
    def robustness_list(self) -> list[str]:
        return [r.strip() for r in self.robustness.split(",") if r.strip()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Params:
        """Build from JSON-like values; unknown keys are an error (a typo must not silently run defaults)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"unknown parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**values)


def schema() -> list[dict[str, Any]]:
    """Each parameter's name, type, default and metadata (label, help, kind (KINDS), choices, min,
    max, advanced), in declaration order."""
    out = []
    for f in fields(Params):
        entry = {"name": f.name, "type": {"str": "str", "int": "int"}[str(f.type)], "default": f.default}
        entry.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in f.metadata.items()})
        out.append(entry)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(schema(), indent=1))
