"""crossl: cross-modal self-supervised learning (CroSSL) for multimodal time series."""

from crossl.errors import CrosslError

__version__ = "0.1.0"
__all__ = ["CrosslError", "__version__"]
