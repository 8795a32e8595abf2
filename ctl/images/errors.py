"""The image store's errors, shared by the store, the layer code and the image sources."""

from __future__ import annotations


class ImageError(Exception):
    """Any image store failure; the message is one line suitable for the user."""


class ImageNotFound(ImageError):
    pass


class InvalidImage(ImageError):
    pass
