"""The LangGraph agent graph and its roles (planner, builder, tester, refactor)."""
