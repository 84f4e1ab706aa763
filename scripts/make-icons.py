#!/usr/bin/env python3
"""Draws Idlegrid's icons into icons/: the app icon in the sizes the Tauri bundler wants (PNG, ICO,
ICNS) and one tray icon per state (waiting, working, paused, error).

The app icon is a 3x3 grid of cells on an indigo tile, one cell lit: a GPU's grid, partly at work.
Tray icons differ in shape as well as colour, so they read on any panel and for colour-blind people:
waiting is a hollow grid, working a filled green grid, paused two amber bars, error a red disc with
an exclamation mark. Shapes are drawn four times larger and scaled down, for smooth edges.

Needs Pillow (pip install pillow). Run from anywhere: python3 scripts/make-icons.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

ICONS = Path(__file__).resolve().parent.parent / "icons"
SUPERSAMPLE = 4

INDIGO = (49, 46, 129, 255)
INDIGO_DARK = (30, 27, 75, 255)
CELL = (199, 210, 254, 255)
LIT = (52, 211, 153, 255)
SLATE = (148, 163, 184, 255)
GREEN = (34, 197, 94, 255)
AMBER = (245, 158, 11, 255)
RED = (239, 68, 68, 255)
WHITE = (255, 255, 255, 255)


def canvas(size):
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    return image, ImageDraw.Draw(image), big


def finish(image, size):
    return image.resize((size, size), Image.LANCZOS)


def app_icon(size):
    image, draw, big = canvas(size)
    margin = big * 0.06
    radius = big * 0.22
    draw.rounded_rectangle([margin, margin, big - margin, big - margin], radius, fill=INDIGO_DARK)
    inset = big * 0.1
    draw.rounded_rectangle([inset, inset, big - inset, big - inset], radius * 0.8, fill=INDIGO)
    grid_start, grid_end = big * 0.24, big * 0.76
    gap = big * 0.05
    cell = (grid_end - grid_start - 2 * gap) / 3
    for row in range(3):
        for col in range(3):
            x = grid_start + col * (cell + gap)
            y = grid_start + row * (cell + gap)
            colour = LIT if (row, col) in {(1, 1), (0, 2)} else CELL
            draw.rounded_rectangle([x, y, x + cell, y + cell], cell * 0.2, fill=colour)
    return finish(image, size)


def grid(draw, big, colour, hollow):
    start, end = big * 0.1, big * 0.9
    gap = big * 0.1
    cell = (end - start - gap) / 2
    width = max(1, round(big * 0.08))
    for row in range(2):
        for col in range(2):
            x = start + col * (cell + gap)
            y = start + row * (cell + gap)
            box = [x, y, x + cell, y + cell]
            if hollow:
                draw.rounded_rectangle(box, cell * 0.18, outline=colour, width=width)
            else:
                draw.rounded_rectangle(box, cell * 0.18, fill=colour)


def tray_icon(state, size=64):
    image, draw, big = canvas(size)
    if state == "waiting":
        grid(draw, big, SLATE, hollow=True)
    elif state == "working":
        grid(draw, big, GREEN, hollow=False)
    elif state == "paused":
        bar = big * 0.24
        for x in (big * 0.18, big * 0.58):
            draw.rounded_rectangle([x, big * 0.12, x + bar, big * 0.88], bar * 0.3, fill=AMBER)
    elif state == "error":
        draw.ellipse([big * 0.06, big * 0.06, big * 0.94, big * 0.94], fill=RED)
        stroke = big * 0.12
        draw.rounded_rectangle(
            [big / 2 - stroke / 2, big * 0.22, big / 2 + stroke / 2, big * 0.6], stroke / 2, fill=WHITE
        )
        draw.ellipse(
            [big / 2 - stroke * 0.6, big * 0.67, big / 2 + stroke * 0.6, big * 0.67 + stroke * 1.2],
            fill=WHITE,
        )
    return finish(image, size)


def main():
    ICONS.mkdir(exist_ok=True)
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        app_icon(size).save(ICONS / name)
    large = app_icon(1024)
    large.save(ICONS / "icon.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (256, 256)])
    large.save(ICONS / "icon.icns")
    for state in ("waiting", "working", "paused", "error"):
        tray_icon(state).save(ICONS / f"tray-{state}.png")
    print(f"icons written to {ICONS}")


if __name__ == "__main__":
    main()
