"""Routers: the topology decision, the heuristic router and the registry by profile kind."""
