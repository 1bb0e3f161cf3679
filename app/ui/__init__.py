"""The Qt desktop application: the only layer that imports PySide6."""
