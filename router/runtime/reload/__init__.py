"""Hot reload: notice that config files changed, and say what a reload changed.

- `watcher.py`: `ConfigWatcher`, a debounced watchdog watch on the config's directories.
- `changes.py`: `diff_configs()` and `ReloadEvent`, the change in data and in words.
"""
