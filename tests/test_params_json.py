"""The plug-ins' copy of the parameter schema must equal the engine's (regenerate when this fails:
`python -m artcloak.params > plugin/common/params.json`)."""
import json
import subprocess
import sys
from pathlib import Path

from artcloak.params import Params, schema

PARAMS_JSON = Path(__file__).resolve().parents[1] / "plugin" / "common" / "params.json"


def test_params_json_equals_schema():
    assert json.loads(PARAMS_JSON.read_text(encoding="utf-8")) == schema(), (
        "plugin/common/params.json is stale: run `python -m artcloak.params > plugin/common/params.json`")


def test_params_module_prints_the_schema():
    out = subprocess.run([sys.executable, "-m", "artcloak.params"], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == schema()


def test_client_shares_the_engine_limits():
    """The plug-ins' client (stdlib only, cannot import the engine) declares the engine's smallest
    side once for both fronts."""
    import importlib.util

    from artcloak import pixels

    client_py = PARAMS_JSON.parent / "artcloak_client.py"
    spec = importlib.util.spec_from_file_location("_client_for_limits", client_py)
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    assert client.MIN_SIDE == pixels.MIN_SIDE


def test_schema_defaults_build_the_default_preset():
    values = {p["name"]: p["default"] for p in json.loads(PARAMS_JSON.read_text(encoding="utf-8"))}
    assert Params.from_dict(values) == Params()


def test_schema_says_each_parameter_kind():
    """Whether a parameter is a closed choice is declared once, in the schema (the CLI, the GIMP 3
    front's choice boxes and the GIMP 2 front's PF_OPTIONs read it)."""
    from artcloak import cli
    from artcloak.params import KINDS

    kinds = {p["name"]: p["kind"] for p in schema()}
    assert kinds == {"intensity": "choice", "quality": "choice", "target": "text", "models": "text",
                     "robustness": "list", "seed": "int"}
    assert all(k in KINDS for k in kinds.values())
    usage = cli.build_parser()._subparsers._group_actions[0].choices["protect"].format_help()
    assert "--intensity low|default|high" in usage and "--target TARGET" in usage
