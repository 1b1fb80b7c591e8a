"""`python -m g3n_core matformer ...`: list presets with their sizes, export slices as checkpoints."""

from __future__ import annotations


def register(sub) -> None:
    """Add the `matformer` command group to the CLI."""
    parser = sub.add_parser("matformer", help="MatFormer Mix-n-Match: presets and slice export")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
