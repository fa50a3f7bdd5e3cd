"""The file integrity monitor: a streaming collector over signed baselines, inotify and rescans."""
