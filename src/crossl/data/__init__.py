"""Data: the window container, windowing, splits and label fractions, public datasets."""

from crossl.data.container import DatasetMeta, WindowSet

__all__ = ["DatasetMeta", "WindowSet"]
