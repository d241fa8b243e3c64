"""The showcase behind ``python -m gradstep demo``."""
