"""Streaming decode (data/streaming/decode.py): the fast path (JPEG draft scale, torch's antialiased bilinear on a
whole-pixel box) gives what PIL's full-resolution bilinear resize of the same box gives, up to rounding and the
DCT-scale decode, for RGB and grey, flipped or not, and is a pure function of (file, u)."""

import io

import numpy as np
import pytest
from PIL import Image

from openjepa.data.streaming.decode import ImageDecoder, _pixel_box, crop_box


def smooth_jpeg(w, h, mode="RGB"):
    """A smooth colour field (what a photo mostly is at these scales), saved as a JPEG."""
    rng = np.random.default_rng(0)
    field = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    buf = io.BytesIO()
    field.convert(mode).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def pil_reference(data, u, dec):
    """PIL's bilinear resize of the same whole-pixel box of the fully decoded image: (C, S, S) float."""
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("L" if dec.channels == 1 else "RGB")
    box = _pixel_box(crop_box(im.width, im.height, u, dec.crop_scale, dec.ratio), im.width, im.height)
    out = im.resize((dec.size, dec.size), Image.BILINEAR, box=box)
    if dec.flip and dec.crop_scale is not None and u[4] < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    a = np.asarray(out, dtype=np.float32)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("w,h,size", [(40, 30, 24),     # box < 2 x size: full-scale decode
                                      (400, 320, 24)])  # box >= 4 x size: decoded at 1/4 or 1/8 scale
def test_fast_decode_matches_pil_bilinear_of_the_same_box(w, h, size, channels):
    data = smooth_jpeg(w, h, "L" if channels == 1 else "RGB")
    for crop_scale in [(0.3, 1.0), None]:
        dec = ImageDecoder(size, channels, crop_scale=crop_scale, flip=True)
        for k in range(6):
            u = np.random.default_rng([k]).random(dec.draws)
            x = dec(data, u)
            assert x.shape == (channels, size, size) and x.dtype == np.uint8 and x.flags.c_contiguous
            assert np.array_equal(x, dec(data, u))  # a pure function of (file, u)
            err = np.abs(x.astype(np.float32) - pil_reference(data, u, dec))
            # full scale: rounding only; at 1/8 scale the whole-pixel box may sit up to 4 source pixels off
            assert err.mean() < (0.5 if w < 2 * size else 4.0) and err.max() < 24, (err.mean(), err.max())


def test_the_draft_scale_keeps_the_box_at_least_the_output_size(monkeypatch):
    """A 1600 px JPEG cropped to a 224 px output is decoded at 1/4 at most when the box is ~900 px (1/8 would
    leave 112 px), and not reduced at all when the box is < 448 px."""
    from openjepa.data.streaming import decode

    seen = []
    real = decode._draft
    monkeypatch.setattr(decode, "_draft", lambda im, box, size: seen.append(real(im, box, size)) or seen[-1])
    data = smooth_jpeg(1600, 1200)
    for side, scale in ((900, 4), (440, 1)):
        frac = side * side / (1600 * 1200)
        dec = ImageDecoder(224, 3, crop_scale=(frac, frac), ratio=(1.0, 1.0))
        dec(data, np.full(5, 0.5))
        im, box = seen[-1]
        assert im.size == (1600 // scale, 1200 // scale)
        assert min(box[2] - box[0], box[3] - box[1]) >= 224
