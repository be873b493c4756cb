"""Entry points run with ``python -m scripts.<name>`` (demo, run report)."""
