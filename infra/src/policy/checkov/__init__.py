# Checkov loads external checks only from a directory with an __init__.py.
