"""Gemma 3n Workbench: `python app.py [--model M] [--host H] [--port P] [--share]` (see docs/app.md)."""

from app.launch import main  # the app/ package, not this file; main() turns Gradio analytics off before importing gradio

if __name__ == "__main__":
    main()
