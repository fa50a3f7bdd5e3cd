"""Text in, records out: auth lines, /proc/net, log following, small file readers."""
