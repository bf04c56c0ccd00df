"""Plans: the plan model and its ops, validation, the dry run, journaled apply and undo, and run steps."""
