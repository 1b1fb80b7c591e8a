"""Videos with sound for the video suite, written for the Gemma 3n workbench (CC0 1.0).

Each clip shows one ball of a colour rolling across the frame while a voice (espeak-ng) says a
number; one question asks for the colour (vision), one for the number (hearing).
"""

CLIPS = [
    ("red", (220, 30, 30), "three"),
    ("green", (30, 160, 60), "seven"),
    ("blue", (40, 80, 220), "five"),
    ("yellow", (240, 200, 0), "nine"),
    ("purple", (130, 50, 170), "two"),
    ("orange", (250, 130, 20), "eight"),
    ("black", (20, 20, 20), "four"),
    ("pink", (240, 120, 180), "six"),
]
DIGITS = {"two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
COLOUR_QUESTION = "What colour is the ball? Answer with one word."
NUMBER_QUESTION = "Which number is spoken? Answer with one word."
