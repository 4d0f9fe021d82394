"""Risa/Asir scripts shipped as package data (read with importlib.resources)."""
