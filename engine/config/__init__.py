"""Configuration: profiles, their interpolation, and the XDG directories."""
