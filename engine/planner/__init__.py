"""The offline planner: generated cases with gold plans, the prompt, the adapter, and its evaluation."""
