"""The fork server: started as early as possible, preloaded with vivace and its dependencies.

Each worker is forked from it and then imports the app module fresh (so reloads see new code). Where
forking is unsafe (not Linux) children are spawned instead. The implementation is the standard
library's ``multiprocessing`` fork server; this module names the policy.
"""

from runtime.supervisor.process import PRELOAD, fork_is_safe, make_context, start_early

__all__ = ["PRELOAD", "fork_is_safe", "make_context", "start_early"]
