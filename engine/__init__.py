"""Everything without a UI: profiles, schemas, workspace listing, and the engines built on them."""
