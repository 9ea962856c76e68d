"""Every surrogate autoencoder artcloak knows: file names, pinned hashes, upstream addresses.

Hashes are pinned two ways: the git blob id of each file in the upstream commit (known for all
files, checkable without having them) and its sha256 where a copy was available to compute it.
"""
from __future__ import annotations

from dataclasses import dataclass

UPSTREAM_REPO = "madebyollin/taesd"
UPSTREAM_COMMIT = "5cccb12dc72074a4be35680c3b108548a7c69978"
UPSTREAM_URL = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/"


@dataclass(frozen=True)
class WeightFile:
    filename: str
    git_blob: str
    sha256: str | None = None

    @property
    def url(self) -> str:
        return UPSTREAM_URL + self.filename


@dataclass(frozen=True)
class ModelSpec:
    """One surrogate: which diffusion family it stands for and how to build it."""

    name: str
    serves: str
    latent_channels: int
    encoder: WeightFile
    decoder: WeightFile
    f32: bool = False  # Sana's 32x downscaling
    global_branch: bool = False  # FLUX.2's GroupNorm branch

    @property
    def files(self) -> tuple[WeightFile, WeightFile]:
        return (self.encoder, self.decoder)


def _w(filename: str, git_blob: str, sha256: str | None = None) -> WeightFile:
    return WeightFile(filename, git_blob, sha256)


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        ModelSpec("taesd", "Stable Diffusion 1.x/2.x", 4,
                  _w("taesd_encoder.pth", "65f85afc58480128926e52086fbf0fdc61c2c9b5"),
                  _w("taesd_decoder.pth", "5915a429fc08eba4adf62bf74f96705b8b0d5c1f")),
        ModelSpec("taesdxl", "Stable Diffusion XL", 4,
                  _w("taesdxl_encoder.pth", "56dfb7ed13ac774bc28dcd981f072f26eb7c5e99"),
                  _w("taesdxl_decoder.pth", "477bc7e9604f418029508e72ac8719bb9d048291")),
        ModelSpec("taesd3", "Stable Diffusion 3", 16,
                  _w("taesd3_encoder.pth", "9678667c0e3e4b648a36daaa8094b1732ae4fb67"),
                  _w("taesd3_decoder.pth", "7943be72a9151d0b330c5d8a4fbb885d889b60a1")),
        ModelSpec("taef1", "FLUX.1", 16,
                  _w("taef1_encoder.pth", "d8ee13fa3a1ff9a92643669d718e4b0827daafa5"),
                  _w("taef1_decoder.pth", "b772c9c4e6d3b79d06b277be59296389591783d3")),
        ModelSpec("taef2", "FLUX.2", 32,
                  _w("taef2_encoder.pth", "8d738aba02f7ba9d156712489322dc5c43d5db1c",
                     "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6"),
                  _w("taef2_decoder.pth", "f4da1ec48cb805b5ee8deb22cfad03f48fe52f64",
                     "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5"),
                  global_branch=True),
        ModelSpec("taesana", "Sana (DC-AE f32c32)", 32,
                  _w("taesana_encoder.pth", "7e6354ea9e818c2fe56d3e80070a9e5e8a37be2f",
                     "858f4e4cc293f88efaf58107f4154b960b9ced0cb5d9c050dad11f926b618c1f"),
                  _w("taesana_decoder.pth", "aa645f9d0a0a1c6b5ed1fc5b446e764af4843a9f"),
                  f32=True),
    ]
}

# The primary family: the optimizer's copy term and most of its f8 steps are its, and the report
# measures it first and whole (its headline). FLUX.2's taef2: the one f8 family whose encoder AND
# decoder ship with every copy of this project's test weights, so its figures can be checked anywhere.
PRIMARY = "taef2"


def primary_of(names: list[str]) -> str | None:
    """The primary among `names`: PRIMARY where it is there, else the first f8 family, else the first
    name (None for none). The optimizer and the report both ask here, so they agree."""
    f8 = [n for n in names if not MODELS[n].f32]
    return PRIMARY if PRIMARY in names else (f8 or names or [None])[0]
