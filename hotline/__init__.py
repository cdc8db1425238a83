"""Hotline: an open-source call-center platform around a cluster of Asterisk 22 nodes."""

__version__ = "0.1.0"
