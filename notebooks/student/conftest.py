"""Student copies (made by tools/exercises.py) raise NotImplementedError by design: nbval skips them.
Their sync with the sources is checked by tests/test_exercises.py."""
collect_ignore_glob = ["*.ipynb"]
