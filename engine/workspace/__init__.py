"""The workspace: the confined resolver, the state directory, listings and read-only agent tools."""
