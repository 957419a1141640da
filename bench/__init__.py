"""pygatt's benchmark: ``python -m bench`` or ``python bench/run.py``."""
