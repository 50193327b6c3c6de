"""gflow: a job scheduler for one Linux machine with GPUs."""

__version__ = "0.1.0"
