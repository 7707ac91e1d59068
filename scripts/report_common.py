"""Shared by the report formatters (scripts/*_markdown.py)."""
import platform


def cpu():
    """The CPU's model name (/proc/cpuinfo), for the 'Measured on' line of a report."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
