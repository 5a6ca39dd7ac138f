"""Training Inspector's desktop application (PySide6) and its command line.

Importing this package, or ``inspector.cli``, imports no Qt module: the window is imported only
when it is opened, so ``training-inspector --headless`` runs without a display.
"""
