"""Device health collectors: Samples about the terminal itself."""
