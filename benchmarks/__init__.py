"""Side-by-side speed and memory benchmarks: the workbench's path against plain transformers, in one run."""
