"""Results tables (report.md) and plots (PNG)."""
