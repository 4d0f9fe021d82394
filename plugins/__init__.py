"""Built-in hgmntk plugins: activations shipped as data files, and the integrators."""
