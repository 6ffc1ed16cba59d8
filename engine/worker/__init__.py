"""The processes that run jobs: the supervisor, the worker and what keeps it healthy."""
