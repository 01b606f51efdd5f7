"""Data shipped with newsflow: the bundled source registry and the demo WARC."""
