"""The vivace developer console: ``console_for(options)`` gives the launcher its console hook."""

from repl.evaluate import Evaluator as Evaluator
from repl.evaluate import Outcome as Outcome
from repl.session import ConsoleHook as ConsoleHook
from repl.session import console_for as console_for

__all__ = ["ConsoleHook", "Evaluator", "Outcome", "console_for"]
