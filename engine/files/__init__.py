"""File management at scale: selecting files, tags, archives and the policy."""
