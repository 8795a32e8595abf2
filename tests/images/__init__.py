"""Tests of the local image store and the image CLI."""
