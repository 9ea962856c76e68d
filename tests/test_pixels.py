"""Format conversion: every supported layout and sample format round-trips; alpha is never touched."""
import numpy as np
import pytest
from artcloak import InputError
from artcloak import pixels as px

FORMATS = [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)]


def _image(c: int, dtype, scale, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.1, 0.9, (40, 50, c))
    if c in (2, 4):
        a[..., -1] = 1.0
        a[:10, :, -1] = 0.0  # fully transparent band
        a[10:20, :, -1] = 0.5
    a = a * scale
    return (np.rint(a) if dtype != np.float32 else a).astype(dtype)


@pytest.mark.parametrize("c", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype,scale", FORMATS)
def test_round_trip_without_change_is_identity(c, dtype, scale):
    img = _image(c, dtype, scale)
    work = px.split(img)
    assert work.rgb.shape == (40, 50, 3) and work.rgb.dtype == np.float32
    assert work.grey == (c <= 2)
    out = px.merge(work, np.zeros_like(work.rgb))
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("c", [2, 4])
@pytest.mark.parametrize("dtype,scale", FORMATS)
def test_alpha_and_transparent_pixels_untouched(c, dtype, scale):
    img = _image(c, dtype, scale)
    work = px.split(img)
    out = px.merge(work, np.full_like(work.rgb, 0.05))
    np.testing.assert_array_equal(out[..., -1], img[..., -1])
    np.testing.assert_array_equal(out[:10], img[:10])  # alpha == 0 rows: colour unchanged too
    assert np.any(out[10:, :, 0] != img[10:, :, 0])


def test_grey_perturbation_is_one_channel():
    img = _image(1, np.uint8, 255)
    work = px.split(img)
    d = np.zeros_like(work.rgb)
    d[..., 0] = 6 / 255  # merge averages the channels for grey images
    out = px.merge(work, d)
    assert out.shape == img.shape
    np.testing.assert_array_equal(out.astype(int) - img, 2)


@pytest.mark.parametrize("bad,words", [
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((1, 1, 3), np.uint8), "at least"),
    (np.zeros((64, 64), np.uint8), "channel axis"),
    (np.zeros((64, 64, 5), np.uint8), "C from 1 to 4"),
    (np.zeros((64, 64, 3), np.int32), "unsupported sample format"),
    (np.full((64, 64, 3), np.nan, np.float32), "NaN"),
    (np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (30000, 30000, 1)), "megapixels"),
])
def test_bad_input_gives_a_clear_error(bad, words):
    with pytest.raises(InputError, match=words):
        px.split(bad)
