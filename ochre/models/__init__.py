"""Models: the frame tokenizer and the action-conditioned dynamics."""
