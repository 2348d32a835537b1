"""Image helpers for samples and reports: frames laid out as one labelled grid.

grid = image_grid([real_frames, predicted_frames], labels=["real", "world"])   # (N, H, W, 3) uint8 rows
"""

from __future__ import annotations

import numpy as np


def image_grid(rows: list[np.ndarray], pad: int = 2, labels: list[str] | None = None) -> np.ndarray:
    """rows: list of (N, H, W, 3) uint8 -> one image with each list entry as a row, each row's label (if given) at its left."""
    h, w = rows[0].shape[1:3]
    n = max(len(r) for r in rows)
    margin = 6 * max(map(len, labels)) + 2 * pad if labels else 0  # the default bitmap font is 6 px per character
    out = np.full((len(rows) * (h + pad) + pad, margin + n * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), margin + pad + j * (w + pad)
            out[y : y + h, x : x + w] = img
    if labels:
        from PIL import Image, ImageDraw

        image = Image.fromarray(out)
        draw = ImageDraw.Draw(image)
        for i, text in enumerate(labels):
            draw.text((pad, pad + i * (h + pad) + h // 2 - 5), text, fill=(0, 0, 0))
        out = np.asarray(image).copy()
    return out
