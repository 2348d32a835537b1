"""Training loops, run folders and logging."""
