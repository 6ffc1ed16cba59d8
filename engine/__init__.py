"""seaco-asr: self-hosted Chinese speech recognition (SeACo-Paraformer + VAD + punctuation).

The package holds every piece of logic; `dashboard.py` and `pages/` only lay out widgets.
Importing `engine` must stay cheap: funasr and torch are imported only by
`engine.recognition`, which only the worker process (and the model tools) import.
"""

__version__ = "0.1.0"
