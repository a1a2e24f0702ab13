"""Browser tests: the Prefect UI driven by headless Chromium (opt in with ``-m browser``)."""
