"""Speech recognition: the only package that imports funasr and torch (worker process only)."""
