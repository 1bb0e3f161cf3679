"""Renders assets/librarian.svg to the PNG sizes desktops and bundles need (run by path)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SIZES = (16, 32, 48, 64, 128, 256)
# Below this size the full icon's dots and page lines turn to mud: a simpler drawing is used.
SMALL_BELOW = 24


def render(
    svg: Path = ASSETS / "librarian.svg",
    small_svg: Path = ASSETS / "librarian-small.svg",
    out_dir: Path = ASSETS,
) -> list[Path]:
    """Write librarian-<size>.png for every size; returns their paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderers = {path: QSvgRenderer(str(path)) for path in (svg, small_svg)}
    for path, renderer in renderers.items():
        if not renderer.isValid():
            raise SystemExit(f"{path} is not a valid SVG")
    written = []
    for size in SIZES:
        renderer = renderers[small_svg if size < SMALL_BELOW else svg]
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = out_dir / f"librarian-{size}.png"
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"could not write {path}")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in render():
        print(written_path)
