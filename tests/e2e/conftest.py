"""End-to-end fixtures: the real local stack as a subprocess."""

from tests.local_stack_process import local_stack as local_stack
