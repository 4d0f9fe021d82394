"""Derivation of holonomic systems: the pure-Python engine and the CAS backends."""
