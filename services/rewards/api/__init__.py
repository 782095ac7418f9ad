"""rewards' HTTP routes (being split into one module per resource)."""

from services.rewards.api.priority_list import router

__all__ = ["router"]
