"""Gemma 3n Workbench: `python app.py [--model M] [--host H] [--port P] [--share]` (see docs/app.md)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from app.launch import main  # noqa: E402  (the app/ package, not this file)

if __name__ == "__main__":
    main()
