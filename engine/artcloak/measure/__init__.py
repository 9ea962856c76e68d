"""What measures a protection: the report's metrics, the verify suite, LPIPS, the figure and the report in
words."""
