"""Data installed with Training Inspector: the bundled example datasets under ``examples/``.

``python -m resources.make_examples`` regenerates the example images.
"""
