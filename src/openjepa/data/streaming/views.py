"""Multi-view decoding for view-invariance methods (LeJEPA) on streaming datasets, run in DataLoader workers.

    ViewsDecoder(size, channels, global_views, crop_scale, local_views, local_size, local_scale, flip)(source, u)
        -> {"global": uint8 (Vg, C, size, size), "local": uint8 (Vl, C, local_size, local_size)}

The image is decoded once and every view is a random resized crop of it (decode.py's crop_box and resampling,
5 uniforms per view: 4 for the box, 1 for the flip), so each sample's views are a pure function of (file, u) and
a rank's views do not depend on the other ranks' rows: a 2-rank run sees the 1-process run's views row for row.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from openjepa.data.streaming.decode import _chw, _resample, crop_box


@dataclass(frozen=True)
class ViewsDecoder:
    size: int  # side of a global view (data.img_size)
    channels: int = 3
    global_views: int = 2
    crop_scale: tuple[float, float] = (0.3, 1.0)  # area range of a global view (data.crop_scale)
    local_views: int = 2
    local_size: int = 16
    local_scale: tuple[float, float] = (0.1, 0.4)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = False

    @property
    def draws(self) -> int:
        return 5 * (self.global_views + self.local_views)

    def __call__(self, source: Path | bytes, u: np.ndarray) -> dict[str, np.ndarray]:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            im = im.convert("L" if self.channels == 1 else "RGB")  # decodes fully: a truncated file fails here
        specs = [(self.size, self.crop_scale)] * self.global_views + \
                [(self.local_size, self.local_scale)] * self.local_views
        views = []
        for v, (side, scale) in enumerate(specs):
            w = u[5 * v: 5 * v + 5]
            box = crop_box(im.width, im.height, w, scale, self.ratio)
            views.append(_chw(_resample(im, box, side, self.flip and w[4] < 0.5)))
        g = np.stack(views[:self.global_views])  # (Vg, C, size, size)
        loc = np.stack(views[self.global_views:]) if self.local_views else \
            np.zeros((0, g.shape[1], self.local_size, self.local_size), dtype=np.uint8)
        return {"global": g, "local": loc}
