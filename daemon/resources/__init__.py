"""Resource drivers; each sub-package declares its keywords in ``manifest.py``."""
