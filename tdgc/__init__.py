"""tdgc: a garbage collector for Amazon ECS task-definition revisions."""

__version__ = "0.1.0"
TOOL = "tdgc"
