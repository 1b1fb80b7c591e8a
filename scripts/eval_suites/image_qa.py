"""Image questions drawn with Pillow for the Gemma 3n workbench (CC0 1.0): colours, shapes, counts, words."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFont

SIZE = 256
COLOURS = {"red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 70, 220), "yellow": (240, 210, 20), "purple": (130, 40, 170), "orange": (250, 140, 20)}
SHAPES = ["circle", "square", "triangle"]
WORDS = ["cat", "sun", "tree", "book", "fish", "moon"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six"]


def _shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)


def colour_items():
    """A big shape in one colour: name the colour."""
    for i, (name, rgb) in enumerate(COLOURS.items()):
        image = Image.new("RGB", (SIZE, SIZE), "white")
        _shape(ImageDraw.Draw(image), SHAPES[i % 3], (48, 48, 208, 208), rgb)
        yield image, "What colour is the shape? Answer with one word.", [name]


def shape_items():
    """A black or coloured shape: name the shape."""
    for i, shape in enumerate(SHAPES * 2):
        image = Image.new("RGB", (SIZE, SIZE), "white")
        fill = (20, 20, 20) if i < 3 else COLOURS["blue"]
        margin = 40 if i < 3 else 70
        _shape(ImageDraw.Draw(image), shape, (margin, margin, SIZE - margin, SIZE - margin), fill)
        yield image, "What shape is shown in the image? Answer with one word.", [shape]


def count_items(seed: int = 0):
    """1 to 6 dots placed without overlap: count them."""
    rnd = random.Random(seed)
    for count in range(1, 7):
        image = Image.new("RGB", (SIZE, SIZE), "white")
        draw = ImageDraw.Draw(image)
        centres: list[tuple[int, int]] = []
        while len(centres) < count:
            c = (rnd.randint(40, SIZE - 40), rnd.randint(40, SIZE - 40))
            if all((c[0] - x) ** 2 + (c[1] - y) ** 2 > 60**2 for x, y in centres):
                centres.append(c)
        for x, y in centres:
            draw.ellipse((x - 22, y - 22, x + 22, y + 22), fill=COLOURS["red"])
        yield image, "How many dots are in the image? Answer with a number.", [str(count), NUMBER_WORDS[count]]


def word_items():
    """A word rendered in large capitals: read it."""
    font = ImageFont.load_default(size=72)
    for word in WORDS:
        image = Image.new("RGB", (SIZE, SIZE), "white")
        draw = ImageDraw.Draw(image)
        text = word.upper()
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        draw.text(((SIZE - (right - left)) // 2 - left, (SIZE - (bottom - top)) // 2 - top), text, fill="black", font=font)
        yield image, "What word is written in the image? Answer with the word only.", [word]


def all_items():
    """(category, image, question, answers) for every image question."""
    for category, items in (("colour", colour_items()), ("shape", shape_items()), ("count", count_items()), ("word", word_items())):
        for image, question, answers in items:
            yield category, image, question, answers
