"""lightning-recipes."""
