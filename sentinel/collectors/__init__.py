"""Collectors observe the terminal and emit Samples and Events; they never judge severity."""
