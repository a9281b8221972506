"""Run reports: live terminal progress and summary (terminal.py), JUnit XML (junit.py), JSON (json_report.py).

Reports render a `RunReport`; they must never change an outcome or print a token (transcripts are
redacted when recorded).
"""
