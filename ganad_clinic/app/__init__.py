"""The desktop app (PySide6): thin windows over the screening service, the store and the model.

Qt lives only in this package. Torch runs in worker threads (`workers.py`, the screening service's
own thread), never on the Qt main thread; results come back as queued signals.
"""
